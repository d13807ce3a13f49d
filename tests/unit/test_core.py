from __future__ import annotations

import pathlib
import re

import pytest

from workers.errors import ConfigError
from workers.settings import Settings, env_names
from workers.topics import DLQ_TOPICS, REGISTRY, STAGES, topic_by_name
from workers.urls import normalize_url, url_hash

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_registry_matches_the_design() -> None:
    table = {t.name: (t.partitions, t.retention_hours) for t in REGISTRY}
    assert table == {
        "crawl.request": (12, 168),
        "raw.page": (12, 24),
        "raw.page.dlq": (3, 168),
        "process.fast": (8, 24),
        "process.rich": (4, 72),
        "processed.final": (12, 24),
        "processed.dlq": (3, 168),
        "storage.saved": (6, 72),
        "storage.dlq": (3, 168),
        "raw.sitemap": (6, 24),
        "discovery.dlq": (3, 168),
    }
    assert {t.name for t in DLQ_TOPICS} == {"raw.page.dlq", "processed.dlq", "storage.dlq", "discovery.dlq"}
    assert all(s.dlq.is_dlq for s in STAGES.values())
    with pytest.raises(KeyError, match="known topics"):
        topic_by_name("nope")


def test_no_topic_name_literal_outside_the_registry() -> None:
    names = [re.escape(t.name) for t in REGISTRY]
    alternatives = "|".join(names)
    pattern = re.compile(rf"""["']({alternatives})["']""")
    offenders = []
    for path in list((ROOT / "workers").rglob("*.py")) + list((ROOT / "crawl_assets").rglob("*.py")):
        if path.name == "topics.py" and path.parent.name == "workers":
            continue
        if pattern.search(path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_settings_parse_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES", '{"*.demo.test": "127.0.0.1"}')
    s = Settings.load()
    assert s.kafka.bootstrap_servers == "kafka:9092"
    assert s.ingestor.resolve_overrides == {"*.demo.test": "127.0.0.1"}
    names = env_names()
    assert "STREAMCRAWL_PG_PASSWORD" in names and "STREAMCRAWL_DATA_DIR" in names
    assert all(doc for _default, doc in names.values()), "every setting is documented"


def test_postgres_dsn_carries_the_lost_client_bounds() -> None:
    from urllib.parse import parse_qs, urlsplit

    from workers.settings import PostgresSettings

    options = parse_qs(urlsplit(PostgresSettings().dsn()).query)["options"]
    assert options == [
        "-c idle_in_transaction_session_timeout=30000 -c tcp_user_timeout=30000"
        " -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=4"
    ]
    off = PostgresSettings(idle_in_transaction_timeout_s=0, lost_client_timeout_s=0)
    assert "?" not in off.dsn("other") and off.dsn("other").endswith("/other")


def test_url_normalisation() -> None:
    assert normalize_url("Example.COM") == "https://example.com/"
    assert normalize_url("http://a.b:80/x?y=1#frag") == "http://a.b/x?y=1"
    assert url_hash(normalize_url("example.com")) == url_hash("https://example.com/")
    for bad in ("", "ftp://x/", "http://", "http://a:99999/"):
        with pytest.raises(ConfigError):
            normalize_url(bad)


def test_readme_configuration_table_is_current() -> None:
    from workers.settings import README_BEGIN, README_END, markdown_table

    text = (ROOT / "README.md").read_text()
    table = text.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()
    assert table == markdown_table(), "run: python -m workers.settings --readme README.md"
