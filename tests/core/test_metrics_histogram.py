"""The latency histogram shared by the services, and the percentile estimate of ``iotdb status``, in process."""

from __future__ import annotations

import math
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from iotdb_core.cli.status_cmd import estimate_quantile, parse_metrics
from iotdb_core.metrics import QUERY_DURATION, Histogram, ServiceCounters
from iotdb_core.rest.metrics import render


def test_observations_fall_into_cumulative_buckets_per_label() -> None:
    histogram = Histogram("h", "test", "surface", (0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(seconds, "rest")
    histogram.observe(0.2, "rpc")
    snapshot = histogram.snapshot()
    assert snapshot["rest"].buckets == ((0.1, 2), (1.0, 3), (math.inf, 4))  # le: a bound is inclusive
    assert snapshot["rest"].count == 4
    assert snapshot["rest"].total == pytest.approx(3.65)
    assert snapshot["rpc"].buckets == ((0.1, 0), (1.0, 1), (math.inf, 1))


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Histogram("h", "test", "surface", (1.0, 0.5))
    with pytest.raises(ValueError, match="increasing"):
        Histogram("h", "test", "surface", ())


def test_concurrent_observations_are_all_counted() -> None:
    histogram = Histogram("h", "test", "surface", (0.5,))

    def work(label: str) -> None:
        for index in range(2000):
            histogram.observe(index % 2, label)

    threads = [threading.Thread(target=work, args=(label,)) for label in ("a", "b", "a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = histogram.snapshot()
    assert snapshot["a"].count == snapshot["b"].count == 4000
    assert snapshot["a"].buckets[0] == (0.5, 2000)


def test_rendered_histogram_parses_and_reads_back() -> None:
    counters = ServiceCounters(["rest_requests_total"])
    counters.histogram(QUERY_DURATION).observe(0.003, "rest")
    counters.histogram(QUERY_DURATION).observe(0.2, "rpc")
    text = render(counters)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["iotdb_query_duration_seconds"].type == "histogram"
    figures = parse_metrics(text)
    buckets, total, count = figures.histograms["iotdb_query_duration_seconds"]["rest"]
    assert (total, count) == (0.003, 1)
    assert buckets[-1] == (math.inf, 1)
    assert figures.histograms["iotdb_query_duration_seconds"]["rpc"][2] == 1


@pytest.mark.parametrize(
    "quantile,expected",
    [(0.5, 1.0), (0.25, 0.5), (0.75, 1.5), (1.0, 2.0)],
)
def test_quantile_interpolates_inside_its_bucket(quantile: float, expected: float) -> None:
    # 2 observations in (0, 1], 2 in (1, 2]
    assert estimate_quantile(quantile, [(1.0, 2), (2.0, 4), (math.inf, 4)]) == pytest.approx(expected)


def test_quantile_in_the_open_bucket_is_the_last_bound_and_empty_is_nan() -> None:
    assert estimate_quantile(0.99, [(1.0, 1), (math.inf, 10)]) == 1.0
    assert math.isnan(estimate_quantile(0.5, [(1.0, 0), (math.inf, 0)]))
