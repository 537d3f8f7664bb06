"""The async client of MaintainX's REST API.

One `MaintainXClient` per API key. Every call goes through the same steps:
wait for the shared limiter, send, read the rate-limit headers, and on a 429 or
a 5xx wait and try again (see `_retry`); a final error answer becomes an
exception of the `_errors` tree carrying MaintainX's own error text.

Reference: https://api.getmaintainx.com/v1/openapi.json (kept in the repository's
shared reference folder); tags "Rate Limiting" and "Subscriptions & Webhooks".
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx

from mxbridge._errors import ApiError, ApiUnavailableError, ConfigError
from mxbridge._maintainx._apierrors import error_from_answer
from mxbridge._maintainx._clock import Clock, SystemClock
from mxbridge._maintainx._limiter import RateLimiter
from mxbridge._maintainx._retry import (
    RetryPolicy,
    backoff_delay,
    is_retryable_status,
    rate_limit_pause,
    retry_delay,
)

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "MAX_PAGE_SIZE",
    "MaintainXClient",
    "Record",
    "Subscription",
]

DEFAULT_BASE_URL = "https://api.getmaintainx.com/v1"
API_KEY_ENV = "MAINTAINX_API_KEY"
MAX_PAGE_SIZE = 200

Record = dict[str, Any]
Params = Mapping[str, str | int | Sequence[str | int]]

# A POST that timed out or failed with a 5xx may have been carried out; sending
# it again could create a second work order, so only 429s are retried for it.
_IDEMPOTENT = frozenset({"GET", "PATCH", "DELETE", "PUT"})


@dataclass(frozen=True, slots=True)
class Subscription:
    """A MaintainX webhook subscription; `secret` only when MaintainX gave it."""

    id: int
    type: str
    url: str
    status: str
    secret: str | None = None


def _iso(moment: datetime | str) -> str:
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _resolve_key(api_key: str | None) -> str:
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if key is None:
        raise ConfigError(f"no MaintainX API key: set {API_KEY_ENV} or pass api_key")
    return key


class MaintainXClient:
    """Async client of the MaintainX REST API; use it with ``async with``.

    `api_key` defaults to the ``MAINTAINX_API_KEY`` environment variable.
    `requests_per_minute` sizes the client-side limiter (None turns it off);
    pass `limiter` to share one limiter between clients of the same user.
    `skip_webhook` is the default for writes: True keeps our own writes from
    coming back to us as webhooks. `clock` and `rand` exist for tests.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        organization_id: int | None = None,
        timeout: float | httpx.Timeout = 30.0,
        requests_per_minute: int | None = 90,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        skip_webhook: bool = True,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        headers = {
            "Authorization": f"Bearer {_resolve_key(api_key)}",
            "Accept": "application/json",
        }
        if organization_id is not None:
            headers["x-organization-id"] = str(organization_id)
        self.base_url = base_url.rstrip("/")
        self._clock = clock or SystemClock()
        if limiter is None and requests_per_minute is not None:
            limiter = RateLimiter(requests_per_minute, 60.0, clock=self._clock)
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.skip_webhook = skip_webhook
        self._rand = rand
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/", headers=headers, timeout=timeout
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- the one way out ---------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
    ) -> Any:
        """Send one call, with limiting and retries; return the decoded JSON body.

        `path` is relative to the base URL (``"/workorders"``). Returns None for
        an empty answer (204). Raises an `ApiError` subclass on failure.
        """
        response = await self._send(method.upper(), path, params, json)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                f"MaintainX answered {method} {path} with a body that is not JSON",
                status=response.status_code,
            ) from exc

    async def _send(
        self, method: str, path: str, params: Params | None, body: Any
    ) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.attempts
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                response = await self._http.request(
                    method, path.lstrip("/"), params=params, json=body
                )
            except httpx.TransportError as exc:
                if last or not self._may_resend(method, exc):
                    raise self._unreachable(method, path, exc) from exc
                await self._clock.sleep(backoff_delay(attempt, self.retry, self._rand))
                continue
            self._note_rate_headers(response)
            if response.is_success:
                return response
            if last or not self._may_retry(method, response.status_code):
                raise error_from_answer(
                    method, path, response.status_code, response.content
                )
            await self._wait_before_retry(response, attempt)

    @staticmethod
    def _may_resend(method: str, exc: httpx.TransportError) -> bool:
        # A refused connection never reached MaintainX: safe to resend anything.
        return method in _IDEMPOTENT or isinstance(exc, httpx.ConnectError)

    @staticmethod
    def _may_retry(method: str, status: int) -> bool:
        if status == 429:
            return True
        return method in _IDEMPOTENT and is_retryable_status(status)

    def _unreachable(
        self, method: str, path: str, exc: httpx.TransportError
    ) -> ApiUnavailableError:
        reason = type(exc).__name__
        return ApiUnavailableError(
            f"MaintainX at {self.base_url} could not be reached for {method} {path}:"
            f" {reason} {exc}".rstrip()
        )

    def _note_rate_headers(self, response: httpx.Response) -> None:
        pause = rate_limit_pause(response.headers)
        if pause is not None and self.limiter is not None:
            self.limiter.pause_for(min(pause, self.retry.max_delay))

    async def _wait_before_retry(self, response: httpx.Response, attempt: int) -> None:
        delay = retry_delay(
            response.status_code,
            response.headers,
            attempt,
            now=self._clock.time(),
            policy=self.retry,
            rand=self._rand,
        )
        if response.status_code == 429 and self.limiter is not None:
            # Every concurrent call waits, not only this one.
            self.limiter.pause_for(delay)
        else:
            await self._clock.sleep(delay)

    def _write_params(self, skip_webhook: bool | None) -> dict[str, str]:
        skip = self.skip_webhook if skip_webhook is None else skip_webhook
        return {"skipWebhook": "true"} if skip else {}

    # -- pagination --------------------------------------------------------------

    async def paginate(
        self, path: str, key: str, params: Params | None = None, *, limit: int = 100
    ) -> AsyncIterator[Record]:
        """Yield every record of a cursor-paged list, following ``nextCursor``.

        `key` names the list in each page (``"workOrders"``); `limit` is the page
        size, at most 200. The same filters are sent with every page, as the
        "Polling for Changes" text of the API description asks.
        """
        query: dict[str, Any] = dict(params or {})
        query["limit"] = max(1, min(limit, MAX_PAGE_SIZE))
        while True:
            page = await self.request("GET", path, params=query)
            for record in page.get(key) or ():
                yield record
            cursor = page.get("nextCursor")
            if not cursor:
                return
            query["cursor"] = cursor

    # -- subscriptions -----------------------------------------------------------

    async def create_subscription(
        self,
        event_type: str,
        url: str,
        *,
        serialize_entity: bool = False,
        options: Mapping[str, Any] | None = None,
        filters: Mapping[str, Any] | None = None,
        skip_webhook: bool | None = None,
    ) -> Subscription:
        """Subscribe `url` to one event type; the answer carries the secret.

        There is no call that lists subscriptions: keep the returned id and
        secret. `serialize_entity` asks for the record in each delivery.
        """
        body: dict[str, Any] = {"type": event_type, "url": url}
        merged = dict(options or {})
        if serialize_entity:
            merged["serializeEntity"] = True
        if merged:
            body["options"] = merged
        if filters:
            body["filters"] = dict(filters)
        params = self._write_params(skip_webhook)
        answer = await self.request("POST", "/subscriptions", params=params, json=body)
        return Subscription(
            int(answer["id"]), event_type, url, answer["status"], answer.get("secret")
        )

    async def get_subscription(self, subscription_id: int) -> Subscription:
        """Return a subscription as MaintainX knows it (without its secret)."""
        answer = await self.request("GET", f"/subscriptions/{subscription_id}")
        return _subscription(answer["subscription"])

    async def update_subscription(
        self,
        subscription_id: int,
        *,
        url: str | None = None,
        event_type: str | None = None,
        skip_webhook: bool | None = None,
    ) -> Subscription:
        """Change a subscription's URL or event type; its secret stays."""
        body = {k: v for k, v in (("url", url), ("type", event_type)) if v is not None}
        answer = await self.request(
            "PATCH",
            f"/subscriptions/{subscription_id}",
            params=self._write_params(skip_webhook),
            json=body,
        )
        return _subscription(answer["subscription"])

    async def delete_subscription(
        self, subscription_id: int, *, skip_webhook: bool | None = None
    ) -> None:
        """Remove a subscription; raises `NotFoundError` if it is already gone."""
        params = self._write_params(skip_webhook)
        await self.request("DELETE", f"/subscriptions/{subscription_id}", params=params)

    async def get_subscription_secret(self, subscription_id: int) -> str:
        """Return the signing secret of a subscription.

        MaintainX's API has no call to rotate a secret: to change it, create a
        new subscription and delete the old one.
        """
        answer = await self.request("GET", f"/subscriptions/{subscription_id}/secret")
        return str(answer["secret"])

    # -- work orders -------------------------------------------------------------

    def list_work_orders(
        self,
        *,
        updated_since: datetime | str | None = None,
        statuses: Sequence[str] = (),
        expand: Sequence[str] = (),
        limit: int = 100,
        params: Params | None = None,
    ) -> AsyncIterator[Record]:
        """Iterate over work orders, optionally changed at or after `updated_since`.

        `statuses` and `expand` take MaintainX's values (``"DONE"``,
        ``"assignees"``); `params` adds any other filter of the API as is.
        """
        query = _list_query(params, statuses=statuses, expand=expand)
        if updated_since is not None:
            query["updatedAt[gte]"] = _iso(updated_since)
        return self.paginate("/workorders", "workOrders", query, limit=limit)

    async def get_work_order(
        self, work_order_id: int, *, expand: Sequence[str] = ()
    ) -> Record:
        """Return one work order."""
        params = _list_query(None, expand=expand)
        answer = await self.request(
            "GET", f"/workorders/{work_order_id}", params=params
        )
        return dict(answer["workOrder"])

    async def create_work_order(
        self, fields: Mapping[str, Any], *, skip_webhook: bool | None = None
    ) -> int:
        """Create a work order (``title`` required); return its id."""
        answer = await self.request(
            "POST", "/workorders", params=self._write_params(skip_webhook), json=fields
        )
        return int(answer["id"])

    async def update_work_order(
        self,
        work_order_id: int,
        fields: Mapping[str, Any],
        *,
        skip_webhook: bool | None = None,
    ) -> Record:
        """Change fields of a work order; return it as updated."""
        answer = await self.request(
            "PATCH",
            f"/workorders/{work_order_id}",
            params=self._write_params(skip_webhook),
            json=dict(fields),
        )
        return dict(answer["workOrder"])

    async def update_work_order_status(
        self, work_order_id: int, status: str, *, skip_webhook: bool | None = None
    ) -> Record:
        """Move a work order to OPEN, IN_PROGRESS, ON_HOLD, DONE or CANCELED."""
        answer = await self.request(
            "PATCH",
            f"/workorders/{work_order_id}/status",
            params=self._write_params(skip_webhook),
            json={"status": status},
        )
        return dict(answer["workOrder"])

    async def delete_work_order(
        self, work_order_id: int, *, skip_webhook: bool | None = None
    ) -> None:
        """Delete a work order."""
        params = self._write_params(skip_webhook)
        await self.request("DELETE", f"/workorders/{work_order_id}", params=params)

    async def add_work_order_comment(
        self, work_order_id: int, content: str, *, skip_webhook: bool | None = None
    ) -> int:
        """Post a comment on a work order; return the comment's id."""
        answer = await self.request(
            "POST",
            f"/workorders/{work_order_id}/comments",
            params=self._write_params(skip_webhook),
            json={"content": content},
        )
        return int(answer["id"])

    # -- work requests and assets ------------------------------------------------

    def list_work_requests(
        self,
        *,
        statuses: Sequence[str] = (),
        expand: Sequence[str] = (),
        limit: int = 100,
        params: Params | None = None,
    ) -> AsyncIterator[Record]:
        """Iterate over work requests (statuses PENDING, APPROVED, REJECTED, DONE)."""
        query = _list_query(params, statuses=statuses, expand=expand)
        return self.paginate("/workrequests", "workRequests", query, limit=limit)

    async def get_work_request(
        self, work_request_id: int, *, expand: Sequence[str] = ()
    ) -> Record:
        """Return one work request."""
        params = _list_query(None, expand=expand)
        answer = await self.request(
            "GET", f"/workrequests/{work_request_id}", params=params
        )
        return dict(answer["workRequest"])

    def list_assets(
        self,
        *,
        updated_since: datetime | str | None = None,
        expand: Sequence[str] = (),
        limit: int = 100,
        params: Params | None = None,
    ) -> AsyncIterator[Record]:
        """Iterate over assets, optionally changed at or after `updated_since`."""
        query = _list_query(params, expand=expand)
        if updated_since is not None:
            query["updatedAt[gte]"] = _iso(updated_since)
        return self.paginate("/assets", "assets", query, limit=limit)

    async def get_asset(self, asset_id: int) -> Record:
        """Return one asset."""
        answer = await self.request("GET", f"/assets/{asset_id}")
        return dict(answer["asset"])


def _list_query(
    params: Params | None,
    *,
    statuses: Sequence[str] = (),
    expand: Sequence[str] = (),
) -> dict[str, Any]:
    # MaintainX repeats the name for lists: statuses=OPEN&statuses=DONE.
    query: dict[str, Any] = dict(params or {})
    if statuses:
        query["statuses"] = list(statuses)
    if expand:
        query["expand"] = list(expand)
    return query


def _subscription(data: Mapping[str, Any]) -> Subscription:
    return Subscription(
        int(data["id"]), str(data["type"]), str(data["url"]), str(data["status"])
    )
