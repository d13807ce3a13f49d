"""Test helpers: real services for fixtures, produce/consume, free ports."""
