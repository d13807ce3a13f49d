"""The fast extractor: ``process.fast`` → ``ProcessedPage`` on ``processed.final``."""
