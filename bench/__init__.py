"""Koolle benchmark: throughput, latency, replay and footprint as ratios against raw JetStream."""
