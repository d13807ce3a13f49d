"""Sensors: pure, bounded, cursor-driven (lag, dead letters, batch completion)."""
