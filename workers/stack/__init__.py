"""The embedded stack: SeaweedFS S3, Tansu broker, PostgreSQL, Dagster and supervisord."""
