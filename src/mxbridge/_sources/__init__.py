"""Sources that read the MaintainX API: enrichment, poller, reconciler, backfill.

Everything they find becomes an event in the same store, built as a MaintainX
delivery body and parsed with `parse_event`, so names and routing are shared.
"""

from __future__ import annotations

from mxbridge._sources._enrich import RecordEnricher
from mxbridge._sources._poll import PageReport, Poller
from mxbridge._sources._reconcile import Reconciler
from mxbridge._sources._records import (
    READ_SOURCES,
    FetchedRecord,
    record_missing,
    record_unchanged,
)
from mxbridge._sources._runtime import SourcesRuntime, every, make_client

__all__ = [
    "READ_SOURCES",
    "FetchedRecord",
    "PageReport",
    "Poller",
    "Reconciler",
    "RecordEnricher",
    "SourcesRuntime",
    "every",
    "make_client",
    "record_missing",
    "record_unchanged",
]
