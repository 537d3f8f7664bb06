"""The sandbox answers in the shapes of MaintainX's published API description."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers

from conftest import SHARED, RunningSandbox

SPEC = SHARED / "reference" / "maintainx-openapi.json"
SERVER = "https://api.getmaintainx.com"


@cache
def spec() -> Any:
    return OpenAPI.from_file_path(str(SPEC), config=Config(spec_validator_cls=None))


class SpecRequest:
    """An httpx request seen as if sent to MaintainX's own server URL."""

    def __init__(self, request: httpx.Request, api_url: str) -> None:
        self.host_url = SERVER
        self.path = "/v1" + request.url.path.removeprefix(httpx.URL(api_url).path)
        self.method = request.method.lower()
        query = {k: request.url.params.get_list(k) for k in request.url.params}
        self.parameters = RequestParameters(
            query=_Multi(query), header=Headers(dict(request.headers))
        )
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "application/json")


class _Multi(dict[str, Any]):
    def getlist(self, key: str) -> list[Any]:
        return list(self.get(key, []))

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key)[0]


class SpecResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.data = response.content or None
        self.headers = Headers(dict(response.headers))
        self.content_type = response.headers.get("content-type", "")


def check(sb: RunningSandbox, method: str, path: str, **kw: Any) -> httpx.Response:
    response = httpx.request(method, sb.api_url + path, headers=sb.auth, **kw)
    spec().validate_response(
        SpecRequest(response.request, sb.api_url), SpecResponse(response)
    )
    return response


def test_every_path_answers_in_spec_shapes(sandbox: RunningSandbox) -> None:
    """Success and error answers of all the issue's paths validate against the spec."""
    sb = sandbox
    sub = check(
        sb,
        "POST",
        "/subscriptions",
        json={"type": "NEW_WORK_ORDER", "url": "https://h.example/x"},
    ).json()
    check(sb, "GET", f"/subscriptions/{sub['id']}")
    check(sb, "GET", f"/subscriptions/{sub['id']}/secret")
    check(
        sb, "PATCH", f"/subscriptions/{sub['id']}", json={"url": "https://h.example/y"}
    )
    check(
        sb, "POST", "/subscriptions", json={"type": "NOPE", "url": "https://h.example"}
    )
    wr = check(sb, "POST", "/workrequests", json={"title": "Leak"}).json()
    wo = check(
        sb,
        "POST",
        "/workorders",
        json={
            "title": "Fix",
            "workRequestId": wr["id"],
            "assetId": 90211,
            "locationId": 7001,
            "assignees": [{"type": "USER", "id": 5}],
            "categories": ["Safety"],
        },
    ).json()
    check(
        sb,
        "PATCH",
        f"/workorders/{wo['id']}",
        json={"partsUsed": [{"partId": 66012, "quantityUsed": 1}]},
    )
    check(
        sb,
        "POST",
        f"/workorders/{wo['id']}/costs",
        json={"type": "TIME", "costType": "WORK", "durationTotal": 600},
    )
    check(sb, "POST", f"/workorders/{wo['id']}/comments", json={"content": "hi"})
    check(sb, "PATCH", f"/workorders/{wo['id']}/status", json={"status": "DONE"})
    check(sb, "PATCH", f"/workorders/{wo['id']}/status", json={"status": "HAPPY"})
    expand = [
        ("expand", e)
        for e in (
            "assignees",
            "categories",
            "parts",
            "asset",
            "location",
            "times",
            "extra_fields",
        )
    ]
    check(sb, "GET", f"/workorders/{wo['id']}", params=expand)
    check(
        sb, "GET", "/workorders", params=[*expand, ("limit", "1"), ("statuses", "DONE")]
    )
    check(sb, "GET", "/workorders", params={"updatedAt[gte]": "2020-01-01T00:00:00Z"})
    check(sb, "GET", "/workorders/1")
    check(
        sb,
        "GET",
        "/workrequests",
        params=[("expand", "work_order"), ("expand", "asset"), ("limit", "1")],
    )
    check(sb, "GET", f"/workrequests/{wr['id']}", params={"expand": "location"})
    check(sb, "GET", "/workrequests/1")
    check(sb, "GET", "/assets", params={"limit": "2"})
    check(sb, "GET", "/assets/90211")
    check(sb, "GET", "/assets/1")
    check(sb, "DELETE", f"/workorders/{wo['id']}")
    check(sb, "DELETE", f"/subscriptions/{sub['id']}")
    check(sb, "GET", f"/subscriptions/{sub['id']}")
    assert check(sb, "GET", "/workorders", params={"limit": "0"}).status_code == 400
