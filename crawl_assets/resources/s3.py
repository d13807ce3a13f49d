"""The S3-compatible object store as a Dagster resource, built on the workers' S3Settings."""

from __future__ import annotations

from dagster import ConfigurableResource
from minio import Minio
from pydantic import Field

from crawl_assets.resources._settings import settings_with
from workers.settings import S3Settings

__all__ = ["S3Resource"]


class S3Resource(ConfigurableResource["S3Resource"]):
    """The bucket holding page content (and archived Tranco snapshots under ``tranco/``).

    Unset fields fall back to the workers' settings (``STREAMCRAWL_S3_*``, read at run
    time); ``definitions.py`` wires the keys with ``EnvVar``.
    """

    endpoint: str | None = Field(default=None, description="S3 endpoint as host:port.")
    access_key: str | None = Field(default=None, description="Access key (wire it with EnvVar).")
    secret_key: str | None = Field(default=None, description="Secret key (wire it with EnvVar).")
    bucket: str | None = Field(default=None, description="Bucket holding page content.")
    secure: bool | None = Field(default=None, description="Use HTTPS.")
    region: str | None = Field(default=None, description="S3 region.")

    @classmethod
    def from_settings(cls, settings: S3Settings) -> S3Resource:
        return cls(
            endpoint=settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            bucket=settings.bucket,
            secure=settings.secure,
            region=settings.region,
        )

    def settings(self) -> S3Settings:
        return settings_with(
            S3Settings,
            {
                "endpoint": self.endpoint,
                "access_key": self.access_key,
                "secret_key": self.secret_key,
                "bucket": self.bucket,
                "secure": self.secure,
                "region": self.region,
            },
        )

    def client(self) -> Minio:
        s = self.settings()
        return Minio(
            s.endpoint, access_key=s.access_key, secret_key=s.secret_key, secure=s.secure, region=s.region
        )

    def ensure_bucket(self) -> str:
        """Create the bucket if it is missing; returns its name."""
        bucket = self.settings().bucket
        client = self.client()
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        return bucket
