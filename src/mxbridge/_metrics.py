"""Prometheus metrics of the pipeline, served at ``/metrics`` by the edge."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mxbridge._logging import log_lines_lost

__all__ = ["Metrics"]


class Metrics:
    """The counters and histograms of one service, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "mxbridge_deliveries_received",
            "Webhook deliveries received, by source and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "mxbridge_ack_seconds",
            "Time from a delivery's first byte to its answer.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.backlog = Gauge(
            "mxbridge_deliveries",
            "Deliveries in the store not yet succeeded, by status (read at scrape).",
            ["status"],
            registry=self.registry,
        )
        self.oldest_due_age = Gauge(
            "mxbridge_oldest_due_age_seconds",
            "How long the longest-waiting pending or failed delivery has been due;"
            " 0 when none is due (read at scrape).",
            registry=self.registry,
        )
        self.attempts = Counter(
            "mxbridge_handler_attempts",
            "Handler attempts, by handler and outcome.",
            ["handler", "outcome"],
            registry=self.registry,
        )
        self.log_lines_lost = Gauge(
            "mxbridge_log_lines_lost",
            "Log lines lost since the process started (full disk, closed stream).",
            registry=self.registry,
        )
        self.log_lines_lost.set_function(log_lines_lost)
