"""Local runtime: the embedded nats-server, the process runner and the demo."""
