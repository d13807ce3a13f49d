"""The storage writer: ``processed.final`` → PostgreSQL + S3 → ``storage.saved``."""
