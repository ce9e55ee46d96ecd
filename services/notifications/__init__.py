"""Notifications service: the one place that contacts families and workers."""
