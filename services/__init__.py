"""The four Koolle services. Each owns its data; they meet only through shared contracts on NATS."""
