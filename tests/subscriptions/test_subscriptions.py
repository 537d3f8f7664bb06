"""Managed subscriptions end to end: the CLI, the sandbox, the store and the edge.

Everything is real: the sandbox serves MaintainX's API on loopback and posts
signed deliveries, the store is an SQLite file, and the edge is mxbridge's own
service on loopback. The CLI runs in-process through `mxbridge._cli.main`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import API_KEY, RunningSandbox, read_store
from mxbridge import Bridge, Event
from mxbridge._cli import main
from mxbridge._config import load_config
from mxbridge._sandbox import serve_in_thread
from mxbridge._service import Service
from mxbridge._store import SqlStore, SubscriptionRecord


@dataclass
class Bridged:
    """A running edge with its handled events, and a CLI configuration for it."""

    edge_url: str
    config_path: Path
    store_url: str
    sandbox: RunningSandbox
    handled: list[Event] = field(default_factory=list)

    def cli(self, *args: str) -> tuple[int, str, str]:
        """Run ``mxbridge ARGS --config ...``; return exit code, stdout, stderr."""
        return run_cli([*args, "--config", str(self.config_path)])

    def wait_handled(self, count: int, timeout: float = 15) -> list[Event]:
        """Wait until handlers ran for `count` events."""
        deadline = time.monotonic() + timeout
        while len(self.handled) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.handled)


_capture: dict[str, Any] = {}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; return its exit code and captured output."""
    capsys = _capture["capsys"]
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:  # pragma: no cover - main always exits
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _cli_capture(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    _capture["capsys"] = capsys
    yield
    _capture.clear()


def toml_value(value: Any) -> str:
    """A TOML value: JSON's spelling serves, except for tables."""
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    return json.dumps(value)


def write_config(path: Path, store_url: str, maintainx: dict[str, Any]) -> Path:
    """Write a TOML configuration with a [store] and a [maintainx] section."""
    lines = ["[store]", f"url = {json.dumps(store_url)}", "", "[maintainx]"]
    for key, value in maintainx.items():
        if key != "subscriptions":
            lines.append(f"{key} = {toml_value(value)}")
    for item in maintainx.get("subscriptions", []):
        lines.append("[[maintainx.subscriptions]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in item.items())
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@pytest.fixture
def bridged(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bridged]:
    """An mxbridge edge and worker on loopback, set up to manage subscriptions."""
    monkeypatch.setenv("MAINTAINX_API_KEY", API_KEY)
    monkeypatch.delenv("MAINTAINX_WEBHOOK_SECRET", raising=False)
    store_url = f"sqlite:///{tmp_path / 'mxbridge.db'}"
    lock = threading.Lock()
    handled: list[Event] = []
    bridge = Bridge()

    @bridge.on("*")
    async def record(event: Event) -> None:
        with lock:
            handled.append(event)

    config = load_config(write_config(tmp_path / "serve.toml", store_url, {}))
    service = Service(config, bridge)
    with serve_in_thread(service.app()) as url:
        edge = url + "/webhooks/maintainx"
        settings = {"base_url": sandbox.api_url, "public_url": edge}
        path = write_config(tmp_path / "mxbridge.toml", store_url, settings)
        yield Bridged(url, path, store_url, sandbox, handled)


def stored(store_url: str) -> list[SubscriptionRecord]:
    """What the store remembers, read by a store of its own."""
    result: list[SubscriptionRecord] = read_store(
        store_url, lambda store: store.list_subscriptions()
    )
    return result


def remember(store_url: str, *records: SubscriptionRecord) -> None:
    """Put records straight into the store."""

    async def write(store: SqlStore) -> None:
        for record in records:
            await store.add_subscription(record)

    read_store(store_url, write)


def at_sandbox(sb: RunningSandbox) -> dict[str, Any]:
    """The subscriptions the sandbox holds, by id."""
    state = httpx.get(sb.url + "/_sandbox/state").json()
    return dict(state["subscriptions"])


def api(sb: RunningSandbox, method: str, path: str, body: Any = None) -> Any:
    """Call the sandbox's API as a MaintainX user would."""
    response = httpx.request(method, sb.api_url + path, json=body, headers=sb.auth)
    response.raise_for_status()
    return response.json() if response.content else None


def settle(sb: RunningSandbox) -> None:
    """Wait until the sandbox has sent every queued delivery."""
    assert httpx.post(sb.url + "/_sandbox/idle", timeout=20).json() == {"idle": True}


# -- create, deliver, verify, handle --------------------------------------------


def test_created_subscriptions_deliver_verified_events_end_to_end(
    bridged: Bridged,
) -> None:
    """Deliveries to created subscriptions verify with stored secrets and run."""
    code, out, err = bridged.cli(
        "subscriptions", "create", "NEW_WORK_ORDER", "workorder.status_changed"
    )
    assert (code, err) == (0, "")
    assert out.count("created ") == 2

    wo = api(bridged.sandbox, "POST", "/workorders", {"title": "Pump leaking"})
    api(bridged.sandbox, "PATCH", f"/workorders/{wo['id']}/status", {"status": "DONE"})
    settle(bridged.sandbox)
    handled = bridged.wait_handled(2)

    assert sorted(e.event_type for e in handled) == [
        "NEW_WORK_ORDER",
        "WORK_ORDER_STATUS_CHANGE",
    ]
    sent = httpx.get(bridged.sandbox.url + "/_sandbox/deliveries").json()
    assert [d["responseStatus"] for d in sent["deliveries"]] == [200, 200]
    records = stored(bridged.store_url)
    assert {r.source for r in records} == {e.source for e in handled}
    assert all(r.url.endswith("/" + r.source) for r in records)


def test_last_delivery_is_recorded_when_the_edge_stops(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edge notes deliveries in memory and writes them when it stops."""
    monkeypatch.setenv("MAINTAINX_API_KEY", API_KEY)
    store_url = f"sqlite:///{tmp_path / 'mxbridge.db'}"
    config = load_config(write_config(tmp_path / "serve.toml", store_url, {}))
    service = Service(config, Bridge())
    with serve_in_thread(service.app()) as url:
        settings = {"base_url": sandbox.api_url, "public_url": url}
        path = write_config(tmp_path / "mxbridge.toml", store_url, settings)
        code, _, err = run_cli(
            [
                "subscriptions",
                "create",
                "NEW_WORK_ORDER",
                "NEW_ASSET",
                "--config",
                str(path),
            ]
        )
        assert (code, err) == (0, "")
        api(sandbox, "POST", "/workorders", {"title": "Belt worn"})
        settle(sandbox)

    seen = {r.event_type: r.last_delivery_at for r in stored(store_url)}

    assert seen["NEW_WORK_ORDER"] is not None
    assert seen["NEW_ASSET"] is None


def test_webhooks_register_takes_the_guides_dotted_names(bridged: Bridged) -> None:
    """`webhooks register --events a,b` creates one subscription per name."""
    code, _out, err = bridged.cli(
        "webhooks", "register", "--events", "workorder.created,asset.created"
    )

    assert (code, err) == (0, "")
    assert sorted(r["type"] for r in at_sandbox(bridged.sandbox).values()) == [
        "NEW_ASSET",
        "NEW_WORK_ORDER",
    ]
    assert len(stored(bridged.store_url)) == 2


def test_serialize_and_filters_reach_maintainx(bridged: Bridged) -> None:
    """--serialize and --filter are sent as options.serializeEntity and filters."""
    code, _, err = bridged.cli(
        "subscriptions",
        "create",
        "WORK_ORDER_STATUS_CHANGE",
        "--serialize",
        "--filter",
        "oneOfStatuses=DONE,ON_HOLD",
    )

    [sub] = at_sandbox(bridged.sandbox).values()
    assert (code, err) == (0, "")
    assert sub["options"] == {"serializeEntity": True}
    assert sub["filters"] == {"oneOfStatuses": ["DONE", "ON_HOLD"]}


# -- sync ---------------------------------------------------------------------------


def sync_config(bridged: Bridged, desired: list[dict[str, Any]]) -> None:
    """Rewrite the CLI configuration with this desired set."""
    settings = {
        "base_url": bridged.sandbox.api_url,
        "public_url": bridged.edge_url + "/webhooks/maintainx",
        "subscriptions": desired,
    }
    write_config(bridged.config_path, bridged.store_url, settings)


def test_sync_without_apply_only_shows_the_plan(bridged: Bridged) -> None:
    """Plain `sync` prints what it would create and changes nothing."""
    sync_config(bridged, [{"event": "workorder.created"}])

    code, out, _ = bridged.cli("subscriptions", "sync")

    assert code == 0
    assert "create  NEW_WORK_ORDER" in out
    assert at_sandbox(bridged.sandbox) == {}


def test_sync_apply_twice_creates_nothing_the_second_time(bridged: Bridged) -> None:
    """A second `sync --apply` finds everything in place and creates nothing."""
    sync_config(
        bridged,
        [
            {"event": "workorder.created", "serialize": True},
            {
                "event": "WORK_ORDER_STATUS_CHANGE",
                "filters": {"oneOfStatuses": ["DONE"]},
            },
        ],
    )

    first = bridged.cli("subscriptions", "sync", "--apply")
    after_first = set(at_sandbox(bridged.sandbox))
    second = bridged.cli("subscriptions", "sync", "--apply")

    assert first[0] == 0
    assert "applied: 2 created, 0 deleted" in first[1]
    assert second[0] == 0
    assert "in sync: nothing to do" in second[1]
    assert second[1].count("keep ") == 2
    assert set(at_sandbox(bridged.sandbox)) == after_first
    assert len(after_first) == 2


def test_sync_replaces_a_deleted_one_and_drops_undesired_ones(
    bridged: Bridged,
) -> None:
    """Sync recreates what MaintainX deleted and deletes what is no longer wanted."""
    sync_config(bridged, [{"event": "NEW_WORK_ORDER"}, {"event": "NEW_ASSET"}])
    bridged.cli("subscriptions", "sync", "--apply")
    by_type = {r.event_type: r.id for r in stored(bridged.store_url)}
    httpx.delete(
        f"{bridged.sandbox.url}/_sandbox/subscriptions/{by_type['NEW_WORK_ORDER']}"
    )
    sync_config(bridged, [{"event": "NEW_WORK_ORDER"}])

    code, out, _ = bridged.cli("subscriptions", "sync", "--apply")

    assert code == 0
    assert "applied: 1 created, 2 deleted" in out
    [alive] = at_sandbox(bridged.sandbox).values()
    assert alive["type"] == "NEW_WORK_ORDER"
    assert [r.id for r in stored(bridged.store_url)] == [alive["id"]]


# -- list, delete, import, rotate ---------------------------------------------------


def test_list_flags_deleted_and_pending_approval(bridged: Bridged) -> None:
    """`list` asks MaintainX and flags a deleted and a PENDING_APPROVAL one."""
    bridged.cli("subscriptions", "create", "NEW_WORK_ORDER", "NEW_ASSET")
    ids = {r.event_type: r.id for r in stored(bridged.store_url)}
    root = bridged.sandbox.url + "/_sandbox/subscriptions/"
    httpx.delete(f"{root}{ids['NEW_WORK_ORDER']}")
    httpx.patch(f"{root}{ids['NEW_ASSET']}", json={"status": "PENDING_APPROVAL"})

    code, out, _ = bridged.cli("subscriptions", "list")

    lines = {int(line.split()[0]): line for line in out.splitlines()}
    assert code == 0
    assert "DELETED by MaintainX" in lines[ids["NEW_WORK_ORDER"]]
    assert "PENDING_APPROVAL: MaintainX support" in lines[ids["NEW_ASSET"]]


def test_list_warns_of_a_quiet_subscription_while_others_deliver(
    bridged: Bridged,
) -> None:
    """A subscription silent for the configured hours is flagged when others are not."""
    now = time.time()
    old = now - 3 * 86400
    common = {"secret": "s", "status": "VALID", "created_at": old}
    remember(
        bridged.store_url,
        SubscriptionRecord(1, "a", "NEW_WORK_ORDER", "https://x/a", **common),
        SubscriptionRecord(
            2, "b", "NEW_ASSET", "https://x/b", last_delivery_at=now - 60, **common
        ),
    )

    code, out, _ = bridged.cli("subscriptions", "list", "--offline")

    lines = out.splitlines()
    assert code == 0
    assert "no delivery for over 24 h" in lines[0]
    assert "!" not in lines[1]


def test_offline_list_needs_no_api_key(
    bridged: Bridged, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`list --offline` shows the store's memory without calling MaintainX."""
    bridged.cli("subscriptions", "create", "NEW_WORK_ORDER")
    monkeypatch.delenv("MAINTAINX_API_KEY")

    code, out, err = bridged.cli("subscriptions", "list", "--offline")

    assert (code, err) == (0, "")
    assert "NEW_WORK_ORDER" in out


def test_delete_all_removes_them_at_maintainx_and_here(bridged: Bridged) -> None:
    """`delete --all` deletes every known subscription, even one gone already."""
    bridged.cli("subscriptions", "create", "NEW_WORK_ORDER", "NEW_ASSET")
    gone = stored(bridged.store_url)[0].id
    httpx.delete(f"{bridged.sandbox.url}/_sandbox/subscriptions/{gone}")

    code, out, _ = bridged.cli("subscriptions", "delete", "--all")

    assert code == 0
    assert "deleted 2 subscription(s)" in out
    assert at_sandbox(bridged.sandbox) == {}
    assert stored(bridged.store_url) == []


def test_import_takes_the_secret_and_the_edge_verifies_with_it(
    bridged: Bridged, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subscription made in the web app is imported; its deliveries then verify."""
    url = bridged.edge_url + "/webhooks/maintainx/erp"
    made = api(
        bridged.sandbox, "POST", "/subscriptions", {"type": "NEW_ASSET", "url": url}
    )
    monkeypatch.setenv("ERP_HOOK_SECRET", made["secret"])

    code, out, err = bridged.cli(
        "subscriptions", "import", str(made["id"]), "--secret-from", "ERP_HOOK_SECRET"
    )
    api(bridged.sandbox, "POST", "/assets", {"name": "Chiller 3"})
    settle(bridged.sandbox)

    assert (code, err) == (0, "")
    assert "as source erp" in out
    assert [e.source for e in bridged.wait_handled(1)] == ["erp"]


def test_import_reads_the_secret_from_a_file(bridged: Bridged, tmp_path: Path) -> None:
    """--secret-from FILE stores the file's secret, whitespace trimmed."""
    url = bridged.edge_url + "/webhooks/maintainx/cmms"
    body = {"type": "NEW_WORK_ORDER", "url": url}
    made = api(bridged.sandbox, "POST", "/subscriptions", body)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(made["secret"] + "\n", "utf-8")

    code, _, err = bridged.cli(
        "subscriptions", "import", str(made["id"]), "--secret-from", str(secret_file)
    )

    [record] = stored(bridged.store_url)
    assert (code, err) == (0, "")
    assert (record.source, record.origin) == ("cmms", "imported")
    assert record.secret == made["secret"]


def test_rotate_says_in_one_line_that_maintainx_cannot() -> None:
    """`rotate` explains, in one line, that the API has no way to rotate."""
    code, out, err = run_cli(["subscriptions", "rotate", "12"])

    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "cannot rotate" in err


# -- bad input ----------------------------------------------------------------------


def assert_nothing_made(bridged: Bridged) -> None:
    """Neither MaintainX nor the store holds a subscription."""
    assert at_sandbox(bridged.sandbox) == {}
    assert stored(bridged.store_url) == []


def assert_one_line_error(result: tuple[int, str, str], words: str) -> None:
    """A non-zero exit and one line on stderr containing `words`."""
    code, _, err = result
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert words in err


def test_missing_api_key_is_one_line_and_makes_nothing(
    bridged: Bridged, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no MAINTAINX_API_KEY, create stops at once with one line."""
    monkeypatch.delenv("MAINTAINX_API_KEY")

    result = bridged.cli("subscriptions", "create", "NEW_WORK_ORDER")

    assert_one_line_error(result, "set the environment variable MAINTAINX_API_KEY")
    assert_nothing_made(bridged)


def test_wrong_api_key_is_one_line_and_makes_nothing(
    bridged: Bridged, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key MaintainX refuses gives its 401 text in one line."""
    monkeypatch.setenv("MAINTAINX_API_KEY", "not-the-key")

    result = bridged.cli("subscriptions", "create", "NEW_WORK_ORDER", "NEW_ASSET")

    assert_one_line_error(result, "refused the API key (401)")
    assert_nothing_made(bridged)


def test_unreachable_api_is_one_line_and_makes_nothing(bridged: Bridged) -> None:
    """A base URL nothing listens on gives one line naming it."""
    closed = "http://127.0.0.1:9/v1"
    settings = {"base_url": closed, "public_url": bridged.edge_url}
    write_config(bridged.config_path, bridged.store_url, settings)

    result = bridged.cli("subscriptions", "create", "NEW_WORK_ORDER")

    assert_one_line_error(result, "could not be reached")
    assert_nothing_made(bridged)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(
            ["NEW_WORK_ORDER", "--url", "https://h.example/" + "p" * 520],
            "at most 512",
            id="url-over-512",
        ),
        pytest.param(
            ["NEW_WORK_ORDER", "workorder.exploded"],
            "unknown MaintainX event type: workorder.exploded",
            id="unknown-event",
        ),
        pytest.param(
            ["NEW_WORK_ORDER", "--filter", "oneOfStatuses"],
            "expected NAME=V1,V2",
            id="bad-filter",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_make_nothing(
    bridged: Bridged, args: list[str], words: str
) -> None:
    """Arguments MaintainX would refuse are caught before any call is made."""
    result = bridged.cli("subscriptions", "create", *args)

    assert_one_line_error(result, words)
    assert_nothing_made(bridged)


def test_plain_http_is_refused_for_the_real_maintainx(bridged: Bridged) -> None:
    """Against MaintainX's own API an http:// public URL is refused up front."""
    settings = {"public_url": "http://bridge.example.net"}
    write_config(bridged.config_path, bridged.store_url, settings)

    result = bridged.cli("subscriptions", "create", "NEW_WORK_ORDER")

    assert_one_line_error(result, "only to https URLs")
    assert stored(bridged.store_url) == []


def test_a_failed_third_create_undoes_the_first_two(
    bridged: Bridged, tmp_path: Path
) -> None:
    """When the 3rd of 3 creates fails, the 2 made are deleted and forgotten."""
    failing = _failing_third_create(bridged.sandbox)
    with serve_in_thread(failing) as proxy:
        settings = {"base_url": proxy + "/v1", "public_url": bridged.edge_url}
        write_config(bridged.config_path, bridged.store_url, settings)

        result = bridged.cli(
            "subscriptions", "create", "NEW_WORK_ORDER", "NEW_ASSET", "NEW_PART"
        )

    assert_one_line_error(result, "url: Invalid url")
    assert_nothing_made(bridged)


def _failing_third_create(sb: RunningSandbox) -> Any:
    """A pass-through to the sandbox whose third POST /subscriptions fails (400)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    creates = [0]

    async def forward(request: Request) -> Response:
        if request.method == "POST" and request.url.path == "/v1/subscriptions":
            creates[0] += 1
            if creates[0] == 3:
                errors = [{"error": "Invalid url", "fieldPath": "url"}]
                return JSONResponse({"errors": errors}, 400)
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                request.method,
                sb.url + request.url.path,
                params=request.query_params,
                content=await request.body(),
                headers={"authorization": request.headers.get("authorization", "")},
            )
        return Response(
            answer.content, answer.status_code, media_type="application/json"
        )

    methods = ["GET", "POST", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])
