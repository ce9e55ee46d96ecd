"""Referral service: takes referrals from the front door, validates, opens cases, emits events."""
