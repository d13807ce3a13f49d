"""Logging and metrics shared by every daemon."""
