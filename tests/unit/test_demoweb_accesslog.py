"""The demo server's access log: buffered writes per process, merged and counted on read."""

from __future__ import annotations

from pathlib import Path

from workers.demoweb.accesslog import (
    FLUSH_INTERVAL_S,
    AccessLogWriter,
    fetch_counts,
    read_access_log,
    wait_for_records,
)


async def test_lines_reach_the_file_within_the_flush_interval(tmp_path: Path) -> None:
    writer = AccessLogWriter(tmp_path)
    writer.start()
    try:
        writer.record(
            start=100.0,
            method="GET",
            host="site-001.demo.test:81",
            target="/a?utm_source=x",
            status=200,
            user_agent="StreamCrawl/0.1 (+tab\there)",
        )
        assert read_access_log(tmp_path) == []  # still buffered
        (record,) = await wait_for_records(tmp_path, at_least=1, timeout_s=10 * FLUSH_INTERVAL_S + 5)
    finally:
        await writer.close()
    assert (record.method, record.host, record.target, record.status) == (
        "GET",
        "site-001.demo.test:81",
        "/a?utm_source=x",
        200,
    )
    assert record.user_agent == "StreamCrawl/0.1 (+tab here)"
    assert record.url == "http://site-001.demo.test:81/a?utm_source=x"
    assert record.canonical_url == "http://site-001.demo.test:81/a"
    writer.record(start=1, method="GET", host="h", target="/", status=200, user_agent="")  # closed: ignored
    assert len(read_access_log(tmp_path)) == 1


async def test_processes_merge_in_time_order_and_cut_lines_are_ignored(tmp_path: Path) -> None:
    first, second = AccessLogWriter(tmp_path), AccessLogWriter(tmp_path)
    assert first.path != second.path
    for writer, starts in ((first, (1.0, 3.0)), (second, (2.0, 4.0))):
        requests = [(t, "GET", "StreamCrawl/0.1") for t in starts]
        requests += [(5.0, "HEAD", "StreamCrawl/0.1"), (6.0, "GET", "Chromium")]
        for start, method, agent in requests:
            writer.record(
                start=start,
                method=method,
                host="site-002.demo.test",
                target="/x",
                status=200,
                user_agent=agent,
            )
        await writer.close()
    with first.path.open("a") as file:
        file.write("7.0\t0.1\t1\tGET\tsite-002.demo.test\t/cut")  # a process killed mid-line
    records = read_access_log(tmp_path)
    assert [r.time for r in records] == [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0, 6.0]
    assert fetch_counts(records) == {"http://site-002.demo.test/x": 6}
    assert fetch_counts(records, user_agent="StreamCrawl") == {"http://site-002.demo.test/x": 4}
    assert fetch_counts(records, method="HEAD") == {"http://site-002.demo.test/x": 2}
    assert [r.time for r in read_access_log(tmp_path, since=4.0)] == [4.0, 5.0, 5.0, 6.0, 6.0]
