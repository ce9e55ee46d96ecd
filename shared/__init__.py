"""Koolle shared kernel: published contracts and infrastructure. No domain logic lives here."""
