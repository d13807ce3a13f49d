"""Typed resources for every external system: Kafka, PostgreSQL, S3."""

from __future__ import annotations

from crawl_assets.resources.kafka import KafkaResource
from crawl_assets.resources.postgres import PostgresResource
from crawl_assets.resources.s3 import S3Resource

__all__ = ["KafkaResource", "PostgresResource", "S3Resource"]
