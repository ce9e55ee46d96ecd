"""Meetings service: convening (koollekutsuminen) and the joint meeting (yhteinen aika)."""
