"""Delays of re-queued requests and the give-up error."""

from __future__ import annotations

from workers.errors import TransientFetchError
from workers.ingestor.failures import HostPaused
from workers.ingestor.requeue import give_up_error, next_try, requeue_delay, requeued
from workers.messages import CrawlRequest
from workers.settings import IngestorSettings

SETTINGS = IngestorSettings(requeue_base_delay_s=5.0, requeue_max_delay_s=60.0, breaker_pause_s=30.0)


def request(requeues: int = 0) -> CrawlRequest:
    return CrawlRequest(
        url="http://a.test/", url_hash="h", host="a.test", requested_at=1.0, requeues=requeues
    )


def test_delay_grows_with_jitter_and_is_capped() -> None:
    error = TransientFetchError("HTTP 503")
    for requeues, low, high in ((0, 2.5, 5.0), (1, 5.0, 10.0), (2, 10.0, 20.0), (6, 30.0, 60.0)):
        delays = [requeue_delay(request(requeues), error, SETTINGS) for _ in range(50)]
        assert all(low <= d <= high for d in delays), (requeues, min(delays), max(delays))
        assert max(delays) - min(delays) > 0  # jittered


def test_retry_after_is_a_floor_and_a_pause_waits_it_out() -> None:
    assert requeue_delay(request(), TransientFetchError("429", retry_after=40.0), SETTINGS) >= 40.0
    assert requeue_delay(request(), TransientFetchError("429", retry_after=900.0), SETTINGS) <= 60.0
    paused = [requeue_delay(request(3), HostPaused("paused", retry_after=12.0), SETTINGS) for _ in range(50)]
    assert all(12.0 <= d <= 13.2 for d in paused)


def test_requeued_counts_and_sets_not_before() -> None:
    again = requeued(request(2), delay=7.5, now=100.0)
    assert (again.requeues, again.not_before, again.url, again.requested_at) == (
        3,
        107.5,
        "http://a.test/",
        1.0,
    )
    error = give_up_error(request(5), TransientFetchError("connect timeout: no connection to a.test"))
    assert type(error) is TransientFetchError
    assert str(error) == "gave up after 6 tries (5 requeues): connect timeout: no connection to a.test"


def test_a_pause_spends_no_requeue_until_the_host_keeps_tripping() -> None:
    settings = IngestorSettings(max_requeues=2, breaker_pause_s=30.0)
    exhausted = request(2)  # its own budget is used up
    for trips in (1, 2):
        again = next_try(
            exhausted, HostPaused("host a.test paused", retry_after=5.0, trips=trips), settings, now=100.0
        )
        assert isinstance(again, CrawlRequest)
        assert again.requeues == 2 and 105.0 <= again.not_before <= 105.5
    gave_up = next_try(
        exhausted, HostPaused("host a.test paused", retry_after=5.0, trips=3), settings, now=100.0
    )
    assert type(gave_up) is TransientFetchError
    assert (
        str(gave_up)
        == "gave up after the host's circuit breaker tripped 3 times in a row: host a.test paused"
    )


def test_own_failures_spend_requeues() -> None:
    settings = IngestorSettings(max_requeues=2, requeue_base_delay_s=1.0)
    again = next_try(request(1), TransientFetchError("HTTP 503"), settings, now=10.0)
    assert isinstance(again, CrawlRequest) and again.requeues == 2 and again.not_before > 10.0
    gave_up = next_try(request(2), TransientFetchError("HTTP 503"), settings, now=10.0)
    assert str(gave_up) == "gave up after 3 tries (2 requeues): HTTP 503"
