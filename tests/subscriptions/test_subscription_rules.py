"""The pure rules of managed subscriptions, and the edge's cache of their secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mxbridge._config import Config, DesiredSubscription
from mxbridge._errors import ConfigError
from mxbridge._service import check_sources
from mxbridge._store import DELETED, SqlStore, SubscriptionRecord
from mxbridge._subscriptions import (
    ManagedSources,
    check_url,
    plan_sync,
    silent_subscriptions,
    source_from_url,
    subscription_url,
)

PUBLIC = "https://hooks.example.net/webhooks/maintainx"
REAL = "https://api.getmaintainx.com/v1"


def record(
    sub_id: int, event_type: str, *, source: str = "", **fields: object
) -> SubscriptionRecord:
    """A remembered subscription under PUBLIC, VALID, made at t=0."""
    source = source or f"s{sub_id}"
    values: dict[str, object] = {
        "url": f"{PUBLIC}/{source}",
        "secret": f"secret-{sub_id}",
        "status": "VALID",
        "created_at": 0.0,
        **fields,
    }
    return SubscriptionRecord(sub_id, source, event_type, **values)


class TestPlan:
    def test_a_matching_live_subscription_is_kept(self) -> None:
        """Same type, serialize and filters under the public URL: keep, create none."""
        desired = [DesiredSubscription(event="workorder.created", serialize=True)]
        known = [record(1, "NEW_WORK_ORDER", serialize=True)]

        plan = plan_sync(desired, known, PUBLIC)

        assert [r.id for r in plan.keep] == [1]
        assert (plan.create, plan.delete) == ([], [])

    @pytest.mark.parametrize(
        "known",
        [
            pytest.param(record(1, "NEW_WORK_ORDER", status=DELETED), id="deleted"),
            pytest.param(record(1, "NEW_WORK_ORDER", serialize=True), id="options"),
            pytest.param(
                record(1, "NEW_WORK_ORDER", url="https://old.example/x/s1"),
                id="old-url",
            ),
        ],
    )
    def test_a_different_one_is_replaced(self, known: SubscriptionRecord) -> None:
        """Deleted, differently set up or elsewhere: create anew, delete the old."""
        desired = [DesiredSubscription(event="NEW_WORK_ORDER")]

        plan = plan_sync(desired, [known], PUBLIC)

        assert [d.event for d in plan.create] == ["NEW_WORK_ORDER"]
        assert [r.id for r in plan.delete] == [1]

    def test_imported_ones_are_left_alone(self) -> None:
        """Sync never deletes a subscription made in the web app."""
        known = [record(7, "NEW_ASSET", origin="imported")]

        plan = plan_sync([], known, PUBLIC)

        assert ([r.id for r in plan.leave], plan.delete) == ([7], [])

    def test_filters_compare_regardless_of_order(self) -> None:
        """oneOfStatuses [DONE, OPEN] keeps a subscription made with [OPEN, DONE]."""
        desired = [
            DesiredSubscription(
                event="WORK_ORDER_STATUS_CHANGE",
                filters={"oneOfStatuses": ["DONE", "OPEN"]},
            )
        ]
        known = [
            record(
                2,
                "WORK_ORDER_STATUS_CHANGE",
                filters={"oneOfStatuses": ["OPEN", "DONE"]},
            )
        ]

        assert not plan_sync(desired, known, PUBLIC).changes


class TestQuiet:
    def test_quiet_one_is_flagged_while_another_delivers(self) -> None:
        """No delivery for the period while another had one: flagged."""
        records = [
            record(1, "NEW_WORK_ORDER", last_delivery_at=100.0),
            record(2, "NEW_ASSET", last_delivery_at=9_990.0),
            record(3, "NEW_PART"),
        ]

        quiet = silent_subscriptions(records, 10_000.0, 3_600.0)

        assert [r.id for r in quiet] == [1, 3]

    def test_a_plant_quiet_everywhere_flags_nothing(self) -> None:
        """With no recent delivery anywhere, no subscription is blamed."""
        records = [record(1, "NEW_WORK_ORDER", last_delivery_at=100.0)]

        assert silent_subscriptions(records, 10_000.0, 3_600.0) == []


class TestUrls:
    def test_a_bare_host_gets_the_edge_path(self) -> None:
        """https://host becomes https://host/webhooks/maintainx/SOURCE."""
        url = subscription_url("https://hooks.example.net/", "mx-a")

        assert url == "https://hooks.example.net/webhooks/maintainx/mx-a"

    @pytest.mark.parametrize(
        ("url", "base", "words"),
        [
            pytest.param("http://h.example/x", REAL, "https", id="http-to-real"),
            pytest.param("https://h.example/" + "x" * 600, REAL, "512", id="long"),
            pytest.param("ftp://h.example/x", REAL, "http(s)", id="scheme"),
        ],
    )
    def test_urls_maintainx_refuses(self, url: str, base: str, words: str) -> None:
        """URLs MaintainX would refuse are refused before any call."""
        with pytest.raises(ConfigError, match=re.escape(words)):
            check_url(url, base)

    def test_plain_http_is_fine_for_a_sandbox(self) -> None:
        """Against a local stand-in an http URL is accepted."""
        check_url("http://127.0.0.1:8080/webhooks/maintainx/x", "http://127.0.0.1/v1")

    @pytest.mark.parametrize(
        ("url", "source"),
        [
            pytest.param(f"{PUBLIC}/erp", "erp", id="named"),
            pytest.param(PUBLIC, "default", id="edge-path"),
            pytest.param("https://h.example", "default", id="no-path"),
        ],
    )
    def test_imported_source_comes_from_the_url(self, url: str, source: str) -> None:
        """An imported subscription's source is the last segment of its URL."""
        assert source_from_url(url) == source


def test_serve_needs_no_source_when_subscriptions_are_managed() -> None:
    """With [maintainx] public_url set, serve starts with no configured source."""
    config = Config.model_validate({"maintainx": {"public_url": PUBLIC}})

    check_sources(config)


class TestManagedSources:
    async def test_a_subscription_added_later_is_found_at_once(
        self, tmp_path: Path
    ) -> None:
        """An unknown path reads the table again, so a new subscription works now."""
        clock = [1_000.0]
        store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
        await store.open()
        sources = ManagedSources(store, miss_ttl=1.0, clock=lambda: clock[0])
        assert await sources.lookup("s1") is None

        await store.add_subscription(record(1, "NEW_WORK_ORDER"))
        clock[0] += 1.5
        found = await sources.lookup("s1")
        await store.close()

        assert found is not None
        assert found.secrets == ["secret-1"]
        assert found.public_url == f"{PUBLIC}/s1"

    async def test_noted_deliveries_are_written_on_flush(self, tmp_path: Path) -> None:
        """Deliveries are noted in memory and written in one go."""
        clock = [1_000.0]
        store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
        await store.open()
        await store.add_subscription(record(1, "NEW_WORK_ORDER"))
        sources = ManagedSources(store, clock=lambda: clock[0])
        await sources.lookup("s1")

        sources.note("s1")
        before = (await store.list_subscriptions())[0].last_delivery_at
        await sources.flush()
        after = (await store.list_subscriptions())[0].last_delivery_at
        await store.close()

        assert (before, after) == (None, 1_000.0)

    async def test_quiet_subscriptions_are_reported(self, tmp_path: Path) -> None:
        """The periodic check returns (and logs) the subscription gone quiet."""
        store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
        await store.open()
        await store.add_subscription(record(1, "NEW_WORK_ORDER"))
        await store.add_subscription(record(2, "NEW_ASSET", last_delivery_at=9_000.0))
        sources = ManagedSources(store, quiet_seconds=3_600.0, clock=lambda: 10_000.0)

        quiet = await sources.warn_quiet()
        await store.close()

        assert [r.id for r in quiet] == [1]
