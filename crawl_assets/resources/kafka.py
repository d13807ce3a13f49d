"""Kafka as a Dagster resource, built on the workers' KafkaSettings."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from crawl_assets.resources._settings import settings_with
from workers.settings import KafkaSettings

__all__ = ["KafkaResource"]


class KafkaResource(ConfigurableResource["KafkaResource"]):
    """The Kafka cluster the pipeline runs on.

    Unset fields fall back to the workers' settings (``STREAMCRAWL_KAFKA_*``, read at run
    time), so Dagster and the daemons always talk to the same cluster. Wire secrets with
    ``EnvVar`` (``sasl_password=EnvVar("STREAMCRAWL_KAFKA_SASL_PASSWORD")``).
    """

    bootstrap_servers: str | None = Field(default=None, description="Comma-separated bootstrap servers.")
    security_protocol: str | None = Field(
        default=None, description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: str | None = Field(default=None, description="SASL mechanism when SASL is used.")
    sasl_username: str | None = Field(default=None, description="SASL username when SASL is used.")
    sasl_password: str | None = Field(default=None, description="SASL password (wire it with EnvVar).")

    @classmethod
    def from_settings(cls, settings: KafkaSettings) -> KafkaResource:
        return cls(
            bootstrap_servers=settings.bootstrap_servers,
            security_protocol=settings.security_protocol,
            sasl_mechanism=settings.sasl_mechanism,
            sasl_username=settings.sasl_username,
            sasl_password=settings.sasl_password,
        )

    def settings(self) -> KafkaSettings:
        """The workers' settings with this resource's fields applied on top."""
        return settings_with(
            KafkaSettings,
            {
                "bootstrap_servers": self.bootstrap_servers,
                "security_protocol": self.security_protocol,
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_username": self.sasl_username,
                "sasl_password": self.sasl_password,
            },
        )
