"""Materialisable assets: Tranco snapshots, the frontier and the topic registry."""
