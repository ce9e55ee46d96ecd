"""Messaging infrastructure: streams, the outbox relay, reliable consumers, dead letters, request/reply."""
