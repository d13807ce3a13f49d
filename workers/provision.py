"""Idempotent topic provisioning from the topic registry.

``provision(kafka)`` creates every topic of ``workers.topics.REGISTRY`` that is missing,
with its partition count and configs, and compares the ones that exist against the
registry. Differences are **reported, never repaired**: changing a partition count
reshuffles keyed data and deleting a topic loses it, so drift is for an operator to
decide. Brokers that cannot describe topic configs (or leave a key out) make those
configs "unverifiable", not an error.

The drift logic talks to a small :class:`TopicAdmin` interface; :class:`KafkaTopicAdmin`
implements it over aiokafka's admin client, unit tests use an in-memory fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError

from workers.errors import ConfigError, DependencyUnavailable
from workers.kafka import make_admin
from workers.settings import KafkaSettings
from workers.topics import REGISTRY, Topic

__all__ = [
    "Drift",
    "KafkaTopicAdmin",
    "ProvisionReport",
    "TopicAdmin",
    "provision",
    "provision_retrying",
    "provision_topics",
]

_TOPIC_ALREADY_EXISTS = 36
_MAX_REPLICATION = 3
_ATTEMPTS = 3
_RETRY_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class Drift:
    """One way an existing topic differs from the registry."""

    topic: str
    setting: str
    """``partitions`` or a topic config key such as ``retention.ms``."""
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual}, the registry says {self.expected}"


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    drift: tuple[Drift, ...] = ()
    configs_unverifiable: tuple[str, ...] = ()
    """Existing topics whose configs the broker could not (fully) report."""

    @property
    def in_sync(self) -> bool:
        return not self.drift

    def summary(self) -> str:
        parts = [f"{len(self.created)} created", f"{len(self.existing)} existing"]
        if self.drift:
            parts.append(f"{len(self.drift)} drift: " + "; ".join(str(d) for d in self.drift))
        if self.configs_unverifiable:
            parts.append(f"configs unverifiable on {len(self.configs_unverifiable)}")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": list(self.created),
            "existing": list(self.existing),
            "drift": [
                {"topic": d.topic, "setting": d.setting, "expected": d.expected, "actual": d.actual}
                for d in self.drift
            ],
            "configs_unverifiable": list(self.configs_unverifiable),
        }


class TopicAdmin(Protocol):
    """What provisioning needs from a Kafka admin client."""

    async def existing_topics(self) -> dict[str, int]:
        """Every topic the cluster has, with its partition count."""

    async def broker_count(self) -> int: ...

    async def create_topics(self, topics: Sequence[Topic], *, replication_factor: int) -> dict[str, bool]:
        """Create topics; per name True if created, False if it already existed."""

    async def topic_configs(self, name: str, keys: Sequence[str]) -> dict[str, str] | None:
        """The topic's values for ``keys`` (absent keys left out); None if the broker cannot tell."""


async def provision_topics(admin: TopicAdmin, topics: Sequence[Topic] = REGISTRY) -> ProvisionReport:
    """Create what is missing and report drift on what exists; never deletes or alters."""
    existing = await admin.existing_topics()
    missing = [t for t in topics if t.name not in existing]
    created: list[str] = []
    raced: list[str] = []
    if missing:
        replication = max(1, min(_MAX_REPLICATION, await admin.broker_count()))
        outcome = await admin.create_topics(missing, replication_factor=replication)
        created = [t.name for t in missing if outcome.get(t.name, False)]
        raced = [t.name for t in missing if not outcome.get(t.name, False)]
    drift: list[Drift] = []
    unverifiable: list[str] = []
    present = [t for t in topics if t.name in existing]
    for topic in present:
        if existing[topic.name] != topic.partitions:
            drift.append(Drift(topic.name, "partitions", str(topic.partitions), str(existing[topic.name])))
        wanted = topic.configs
        actual = await admin.topic_configs(topic.name, list(wanted))
        if actual is None or any(key not in actual for key in wanted):
            unverifiable.append(topic.name)
        for key, value in wanted.items():
            if actual is not None and key in actual and actual[key] != value:
                drift.append(Drift(topic.name, key, value, actual[key]))
    return ProvisionReport(
        created=tuple(created),
        existing=tuple([t.name for t in present] + raced),
        drift=tuple(drift),
        configs_unverifiable=tuple(unverifiable),
    )


@dataclass(slots=True)
class KafkaTopicAdmin:
    """TopicAdmin over aiokafka. Only lists/creates/describes: it never alters a topic."""

    client: AIOKafkaAdminClient
    timeout_ms: int = 30_000

    async def existing_topics(self) -> dict[str, int]:
        # Metadata for *all* topics: asking for named ones would auto-create them on some brokers.
        return {
            t["topic"]: len(t["partitions"])
            for t in await self.client.describe_topics()
            if not t.get("is_internal") and not t["topic"].startswith("__")
        }

    async def broker_count(self) -> int:
        cluster = await self.client.describe_cluster()
        return len(cluster.get("brokers", [])) or 1

    async def create_topics(self, topics: Sequence[Topic], *, replication_factor: int) -> dict[str, bool]:
        response = await self.client.create_topics(
            [NewTopic(t.name, t.partitions, replication_factor, topic_configs=t.configs) for t in topics],
            timeout_ms=self.timeout_ms,
        )
        outcome: dict[str, bool] = {}
        for entry in response.topic_errors:
            name, code, message = entry[0], entry[1], entry[2] if len(entry) > 2 else ""
            if code == 0:
                outcome[name] = True
            elif code == _TOPIC_ALREADY_EXISTS:
                outcome[name] = False
            else:
                raise ConfigError(
                    f"the broker refused to create topic {name!r}: error {code} {message or ''}"
                )
        return outcome

    async def topic_configs(self, name: str, keys: Sequence[str]) -> dict[str, str] | None:
        try:
            responses = await self.client.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name)]  # all: Tansu drops a filtered request
            )
        except (KafkaError, NotImplementedError, ValueError):
            return None
        out: dict[str, str] = {}
        for response in responses:
            for resource in response.resources:
                if resource[0]:  # error code
                    return None
                for entry in resource[4]:
                    if entry[0] in keys and entry[1] is not None:
                        out[entry[0]] = entry[1]
        return out


async def provision(kafka: KafkaSettings, topics: Sequence[Topic] = REGISTRY) -> ProvisionReport:
    """Provision ``topics`` on the cluster ``kafka`` points at."""
    client = make_admin(kafka, client_id="streamcrawl-provision")
    try:
        await client.start()
    except KafkaConnectionError as exc:
        raise DependencyUnavailable(
            f"cannot reach Kafka at {kafka.bootstrap_servers} to provision topics; start the broker "
            "(`streamcrawl up`) or fix STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    try:
        return await provision_retrying(KafkaTopicAdmin(client), topics, where=kafka.bootstrap_servers)
    finally:
        await client.close()


async def provision_retrying(
    admin: TopicAdmin, topics: Sequence[Topic] = REGISTRY, *, where: str, attempts: int = _ATTEMPTS
) -> ProvisionReport:
    """``provision_topics``, asked again when the broker does not answer in time.

    Provisioning is idempotent (what exists by then is listed, not created again), so a broker
    slow to answer - one whose log store just came back, a controller still busy - is simply
    asked again; after ``attempts`` the caller gets a DependencyUnavailable that says what to do.
    A refusal (ConfigError) is not retried.
    """
    attempt = 1
    while True:
        try:
            return await provision_topics(admin, topics)
        except (KafkaError, TimeoutError) as exc:
            if attempt >= attempts:
                raise DependencyUnavailable(
                    f"Kafka at {where} did not provision the topics ({type(exc).__name__}: "
                    f"{exc or 'no answer in time'}) after {attempts} tries; check the broker's log "
                    "(`streamcrawl status` names it) and run `streamcrawl provision` again"
                ) from exc
            await asyncio.sleep(_RETRY_DELAY_S * attempt)
            attempt += 1
