"""The MaintainX client against the sandbox, over real HTTP on loopback."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from conftest import Receiver, RunningSandbox
from mxbridge._errors import (
    ApiError,
    ApiUnavailableError,
    AuthenticationError,
    ConfigError,
    NotFoundError,
    RateLimitedError,
)
from mxbridge._maintainx import MaintainXClient, RateLimiter, RetryPolicy


class FakeClock:
    """A clock whose sleeps return at once and only move its own time."""

    def __init__(self) -> None:
        self.now = 1_790_000_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


def client(
    sb: RunningSandbox, clock: FakeClock | None = None, **kw: object
) -> MaintainXClient:
    return MaintainXClient(
        sb.api_key,
        base_url=sb.api_url,
        clock=clock or FakeClock(),
        rand=lambda: 0.5,
        **kw,  # type: ignore[arg-type]
    )


def admin(sb: RunningSandbox, path: str, body: object) -> None:
    """Call an admin path of the sandbox (a plain blocking call, before awaiting)."""
    httpx.post(sb.url + "/_sandbox" + path, json=body, timeout=20)


def inject(sb: RunningSandbox, *answers: dict[str, object]) -> None:
    httpx.post(sb.url + "/_sandbox/faults", json={"answers": list(answers)})


async def test_pagination_follows_next_cursor_across_pages(
    sandbox: RunningSandbox,
) -> None:
    """Listing work orders with a small page size walks every page, once each."""
    async with client(sandbox) as mx:
        ids = [await mx.create_work_order({"title": f"WO {n}"}) for n in range(7)]

        seen = [wo["id"] async for wo in mx.list_work_orders(limit=3)]

    assert seen == ids
    assert sandbox.sandbox.counts["requests"] == 7 + 3


async def test_list_filters_by_status_and_updated_since(
    sandbox: RunningSandbox,
) -> None:
    """statuses and updatedAt[gte] are sent on every page and honoured."""
    async with client(sandbox) as mx:
        first = await mx.create_work_order({"title": "old"})
        done = await mx.update_work_order_status(first, "DONE")
        await mx.create_work_order({"title": "new"})

        found = [w async for w in mx.list_work_orders(statuses=["DONE"], limit=1)]
        since = [w async for w in mx.list_work_orders(updated_since=done["updatedAt"])]

    assert [w["id"] for w in found] == [first]
    assert first in [w["id"] for w in since]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {"X-Rate-Limit-Reset": "7", "X-Rate-Limit-Remaining": "0"},
            7.25,
            id="x-rate-limit-reset",
        ),
        pytest.param({"Retry-After": "3"}, 3.25, id="retry-after-seconds"),
        pytest.param("http-date", 30.25, id="retry-after-http-date"),
        pytest.param({}, 0.25, id="no-header-jittered-backoff"),
    ],
)
async def test_429_waits_as_the_headers_say_then_retries(
    sandbox: RunningSandbox, headers: object, expected: float
) -> None:
    """A 429 is retried after the wait its headers name (plus a margin), or backoff."""
    clock = FakeClock()
    if headers == "http-date":
        headers = {"Retry-After": email.utils.formatdate(clock.now + 30, usegmt=True)}
    inject(sandbox, {"status": 429, "headers": headers})

    async with client(sandbox, clock) as mx:
        asset = await mx.get_asset(90211)

    assert asset["name"] == "Compressor #2"
    assert clock.sleeps == [pytest.approx(expected)]


async def test_retry_after_is_capped(sandbox: RunningSandbox) -> None:
    """A Retry-After longer than the cap waits only the cap."""
    clock = FakeClock()
    inject(sandbox, {"status": 429, "headers": {"Retry-After": "3600"}})

    async with client(sandbox, clock, retry=RetryPolicy(max_delay=20)) as mx:
        await mx.get_asset(90211)

    assert clock.sleeps == [20]


async def test_5xx_is_retried_with_backoff(sandbox: RunningSandbox) -> None:
    """Two 503s then success: the call succeeds after two jittered waits."""
    clock = FakeClock()
    inject(sandbox, {"status": 503, "count": 2, "body": {"error": "busy"}})

    async with client(sandbox, clock) as mx:
        wr = [w async for w in mx.list_work_requests()]

    assert wr == []
    assert clock.sleeps == [0.25, 0.5]


async def test_5xx_that_persists_becomes_api_unavailable(
    sandbox: RunningSandbox,
) -> None:
    """After the last attempt a 500 raises ApiUnavailableError with MaintainX's text."""
    inject(sandbox, {"status": 500, "count": 9, "body": {"error": "boom"}})

    async with client(sandbox, retry=RetryPolicy(attempts=3)) as mx:
        with pytest.raises(ApiUnavailableError, match=r"500.*boom") as caught:
            await mx.get_asset(90211)

    assert caught.value.status == 500


async def test_429_that_persists_becomes_rate_limited(sandbox: RunningSandbox) -> None:
    """A 429 on every attempt raises RateLimitedError."""
    inject(sandbox, {"status": 429, "count": 9, "headers": {"Retry-After": "1"}})

    async with client(sandbox, retry=RetryPolicy(attempts=2)) as mx:
        with pytest.raises(RateLimitedError):
            await mx.get_asset(90211)


async def test_post_is_not_retried_on_5xx(sandbox: RunningSandbox) -> None:
    """A POST that failed with 5xx may have happened: it is not sent again."""
    inject(sandbox, {"status": 502, "count": 1})

    async with client(sandbox) as mx:
        with pytest.raises(ApiUnavailableError):
            await mx.create_work_order({"title": "once"})

    assert sandbox.sandbox.plant.data["workOrders"] == {}


async def test_limiter_keeps_a_busy_client_under_the_server_limit(
    sandbox: RunningSandbox,
) -> None:
    """15 concurrent calls with a 3-per-second limiter never meet the server's 6/s."""
    import asyncio

    admin(sandbox, "/rate-limit", {"limit": 6, "window": 1})
    limiter = RateLimiter(3, 1.0)

    async with MaintainXClient(
        sandbox.api_key, base_url=sandbox.api_url, limiter=limiter
    ) as mx:
        assets = await asyncio.gather(*(mx.get_asset(90211) for _ in range(15)))

    assert len(assets) == 15
    assert sandbox.sandbox.counts == {"requests": 15, "limited": 0}


async def test_limiter_spacing_with_a_fake_clock() -> None:
    """No window of `window` seconds ever holds more than `limit` starts."""
    clock = FakeClock()
    limiter = RateLimiter(3, 10.0, clock=clock)
    starts = []

    for _ in range(10):
        await limiter.acquire()
        starts.append(clock.now)

    assert all(b - a >= 10.0 for a, b in zip(starts, starts[3:], strict=False))


async def test_server_remaining_zero_pauses_the_limiter(
    sandbox: RunningSandbox,
) -> None:
    """When X-Rate-Limit-Remaining reaches 0 the next call waits X-Rate-Limit-Reset."""
    clock = FakeClock()
    admin(sandbox, "/rate-limit", {"limit": 1, "window": 60})

    async with client(sandbox, clock) as mx:
        await mx.get_asset(90211)
        with pytest.raises(RateLimitedError):
            await mx.get_asset(90212)

    assert clock.sleeps[0] == pytest.approx(60)


async def test_wrong_key_says_so(sandbox: RunningSandbox) -> None:
    """A 401 raises AuthenticationError saying the key is wrong or missing."""
    async with MaintainXClient("nope", base_url=sandbox.api_url) as mx:
        with pytest.raises(AuthenticationError, match="wrong, revoked or missing"):
            await mx.get_asset(90211)


def test_missing_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no key passed and MAINTAINX_API_KEY unset, the client refuses to start."""
    monkeypatch.delenv("MAINTAINX_API_KEY", raising=False)

    with pytest.raises(ConfigError, match="MAINTAINX_API_KEY"):
        MaintainXClient()


async def test_400_carries_field_path_and_text(sandbox: RunningSandbox) -> None:
    """A rejected write raises ApiError with MaintainX's fieldPath and error text."""
    async with client(sandbox) as mx:
        wo = await mx.create_work_order({"title": "t"})
        with pytest.raises(ApiError, match="status: Invalid status") as caught:
            await mx.update_work_order_status(wo, "HAPPY")

    assert caught.value.status == 400
    assert caught.value.errors == (("status", "Invalid status"),)


async def test_404_is_not_found(sandbox: RunningSandbox) -> None:
    """An unknown id raises NotFoundError with MaintainX's words."""
    async with client(sandbox) as mx:
        with pytest.raises(NotFoundError, match="Work Order Not Found"):
            await mx.get_work_order(1)


async def test_unreachable_api_is_api_unavailable() -> None:
    """A refused connection, after retries, raises ApiUnavailableError."""
    async with MaintainXClient(
        "k",
        base_url="http://127.0.0.1:9/v1",
        clock=FakeClock(),
        retry=RetryPolicy(attempts=2),
    ) as mx:
        with pytest.raises(ApiUnavailableError, match="could not be reached"):
            await mx.get_asset(1)


async def test_subscription_lifecycle(sandbox: RunningSandbox) -> None:
    """Create returns id and secret; get, secret, update and delete all work."""
    async with client(sandbox) as mx:
        sub = await mx.create_subscription(
            "NEW_WORK_ORDER", "https://h.example/a", serialize_entity=True
        )
        fetched = await mx.get_subscription(sub.id)
        secret = await mx.get_subscription_secret(sub.id)
        moved = await mx.update_subscription(sub.id, url="https://h.example/b")
        await mx.delete_subscription(sub.id)
        with pytest.raises(NotFoundError):
            await mx.get_subscription(sub.id)

    assert (fetched.type, fetched.status, secret) == (
        "NEW_WORK_ORDER",
        "VALID",
        sub.secret,
    )
    assert moved.url == "https://h.example/b"


async def test_writes_skip_webhooks_by_default(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    """Our writes send skipWebhook, so nothing echoes back; opting out sends one."""
    async with client(sandbox) as mx:
        await mx.create_subscription(
            "NEW_WORK_ORDER", receiver.url + "/hook", skip_webhook=False
        )
        await mx.create_work_order({"title": "quiet"})
        await mx.create_work_order({"title": "loud"}, skip_webhook=False)
    admin(sandbox, "/idle", None)

    assert len(receiver.received) == 1


async def test_work_requests_and_assets(sandbox: RunningSandbox) -> None:
    """Work requests and assets can be listed and fetched."""
    async with client(sandbox) as mx:
        assets = [a async for a in mx.list_assets(limit=2)]
        one = await mx.get_asset(assets[0]["id"])
        request_id = (await mx.request("POST", "/workrequests", json={"title": "r"}))[
            "id"
        ]
        wr = await mx.get_work_request(request_id)
        pending = [w async for w in mx.list_work_requests(statuses=["PENDING"])]

    assert len(assets) == 3
    assert one["id"] == assets[0]["id"]
    assert wr["requestStatus"] == "PENDING"
    assert pending[0]["id"] == request_id
