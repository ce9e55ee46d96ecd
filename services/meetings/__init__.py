"""Meetings service: convening (koollekutsuminen) and the joint meeting (yhteinen tapaaminen; the practice model calls it yhteinen aika)."""
