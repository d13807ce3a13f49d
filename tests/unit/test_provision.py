"""Topic provisioning decisions against an in-memory admin: create, keep, report drift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from aiokafka.errors import RequestTimedOutError

from workers.errors import DependencyUnavailable
from workers.provision import Drift, provision_retrying, provision_topics
from workers.topics import RAW_PAGE, REGISTRY, STORAGE_DLQ, Topic


@dataclass
class FakeAdmin:
    """Topics as name -> (partitions, configs); ``configs_supported=False`` mimics a broker without DescribeConfigs."""

    topics: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    brokers: int = 1
    configs_supported: bool = True
    created_with_replication: list[int] = field(default_factory=list)
    race: set[str] = field(default_factory=set)
    """Names another provisioner creates between our listing and our create call."""

    async def existing_topics(self) -> dict[str, int]:
        return {name: parts for name, (parts, _) in self.topics.items() if name not in self.race}

    async def broker_count(self) -> int:
        return self.brokers

    async def create_topics(self, topics: Sequence[Topic], *, replication_factor: int) -> dict[str, bool]:
        self.created_with_replication.append(replication_factor)
        out: dict[str, bool] = {}
        for t in topics:
            out[t.name] = t.name not in self.topics
            self.topics.setdefault(t.name, (t.partitions, dict(t.configs)))
        return out

    async def topic_configs(self, name: str, keys: Sequence[str]) -> dict[str, str] | None:
        if not self.configs_supported:
            return None
        return {k: v for k, v in self.topics[name][1].items() if k in keys}


async def test_creates_every_missing_topic_with_partitions_and_configs() -> None:
    admin = FakeAdmin()
    report = await provision_topics(admin)
    assert set(report.created) == {t.name for t in REGISTRY}
    assert report.existing == () and report.drift == ()
    for t in REGISTRY:
        assert admin.topics[t.name] == (t.partitions, t.configs)
    assert admin.created_with_replication == [1]


async def test_second_run_changes_nothing() -> None:
    admin = FakeAdmin()
    await provision_topics(admin)
    before = dict(admin.topics)
    report = await provision_topics(admin)
    assert report.created == ()
    assert set(report.existing) == {t.name for t in REGISTRY}
    assert report.in_sync and report.configs_unverifiable == ()
    assert admin.topics == before


async def test_replication_is_capped_at_three() -> None:
    admin = FakeAdmin(brokers=5)
    await provision_topics(admin, [RAW_PAGE])
    assert admin.created_with_replication == [3]


async def test_partition_and_config_drift_is_reported_not_repaired() -> None:
    wrong_configs = {**RAW_PAGE.configs, "retention.ms": "1000"}
    admin = FakeAdmin(topics={RAW_PAGE.name: (3, wrong_configs)})
    report = await provision_topics(admin, [RAW_PAGE, STORAGE_DLQ])
    assert report.created == (STORAGE_DLQ.name,)
    assert report.existing == (RAW_PAGE.name,)
    assert set(report.drift) == {
        Drift(RAW_PAGE.name, "partitions", str(RAW_PAGE.partitions), "3"),
        Drift(RAW_PAGE.name, "retention.ms", RAW_PAGE.configs["retention.ms"], "1000"),
    }
    assert not report.in_sync
    assert admin.topics[RAW_PAGE.name] == (3, wrong_configs)  # untouched
    assert "raw.page: partitions is 3, the registry says 12" in report.summary()


async def test_broker_without_describe_configs_is_unverifiable_not_an_error() -> None:
    admin = FakeAdmin(topics={RAW_PAGE.name: (RAW_PAGE.partitions, {})}, configs_supported=False)
    report = await provision_topics(admin, [RAW_PAGE])
    assert report.drift == ()
    assert report.configs_unverifiable == (RAW_PAGE.name,)


async def test_missing_config_keys_make_the_topic_unverifiable() -> None:
    partial = {"retention.ms": RAW_PAGE.configs["retention.ms"]}
    admin = FakeAdmin(topics={RAW_PAGE.name: (RAW_PAGE.partitions, partial)})
    report = await provision_topics(admin, [RAW_PAGE])
    assert report.drift == ()
    assert report.configs_unverifiable == (RAW_PAGE.name,)


async def test_topic_created_concurrently_counts_as_existing() -> None:
    admin = FakeAdmin(
        topics={RAW_PAGE.name: (RAW_PAGE.partitions, dict(RAW_PAGE.configs))}, race={RAW_PAGE.name}
    )
    report = await provision_topics(admin, [RAW_PAGE])
    assert report.created == ()
    assert report.existing == (RAW_PAGE.name,)


def test_report_as_dict_is_json_ready() -> None:
    import json

    from workers.provision import ProvisionReport

    report = ProvisionReport(created=("a",), drift=(Drift("b", "partitions", "12", "3"),))
    assert json.loads(json.dumps(report.as_dict()))["drift"][0]["actual"] == "3"


@dataclass
class SlowAdmin(FakeAdmin):
    """Times out on the first ``slow`` create calls (after creating half of what it was asked)."""

    slow: int = 1

    async def create_topics(self, topics: Sequence[Topic], *, replication_factor: int) -> dict[str, bool]:
        if self.slow > 0:
            self.slow -= 1
            await super().create_topics(topics[: len(topics) // 2], replication_factor=replication_factor)
            raise RequestTimedOutError()
        return await super().create_topics(topics, replication_factor=replication_factor)


async def test_a_broker_slow_to_answer_is_asked_again() -> None:
    admin = SlowAdmin(slow=1)
    report = await provision_retrying(admin, where="broker:9092")
    assert {t.name for t in REGISTRY} == set(admin.topics)
    # What the timed-out call did create is found existing, the rest is created: nothing twice.
    assert len(report.created) + len(report.existing) == len(REGISTRY) and report.created


async def test_a_broker_that_never_answers_gets_an_error_that_says_what_to_do() -> None:
    admin = SlowAdmin(slow=5)
    with pytest.raises(DependencyUnavailable, match=r"broker:9092 did not provision the topics .* 2 tries"):
        await provision_retrying(admin, where="broker:9092", attempts=2)
