"""The edge over real HTTP: verify, store, answer; and every way to refuse."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import FIXTURES, SECRET, RunningEdge, read_store, signed_headers, wait_for
from mxbridge import Bridge, Event, PermanentError
from mxbridge._signing import BODY_SIGNATURE_HEADER, EVENT_ID_HEADER, hmac_hex

NEW_WORK_ORDER = (FIXTURES / "bodies" / "new_work_order.json").read_bytes()


def recording_bridge() -> tuple[Bridge, list[Event]]:
    """A bridge whose one handler records every event it is given."""
    bridge = Bridge()
    seen: list[Event] = []
    bridge.add(seen.append, "*", name="record")
    return bridge, seen


def events_in(edge: RunningEdge) -> list[Any]:
    """Every event summary in the edge's store."""
    url = edge.service.config.store.url
    return read_store(url, lambda store: store.list_events(limit=1000))


def test_a_signed_delivery_is_stored_and_handled(run_edge: Any) -> None:
    """200 with the event id, the event in the store, the handler run once."""
    bridge, seen = recording_bridge()
    with run_edge(bridge) as edge:
        response = edge.deliver(NEW_WORK_ORDER)

        wait_for(lambda: len(seen) == 1)
        stored = events_in(edge)

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert [e.id for e in stored] == [response.json()["event_id"]]
    assert seen[0].raw == NEW_WORK_ORDER
    assert seen[0].names == ("NEW_WORK_ORDER", "workorder.created")


def test_header_names_are_matched_without_regard_to_case(run_edge: Any) -> None:
    """Upper-case signature header names verify like lower-case ones."""
    bridge, _ = recording_bridge()
    headers = {k.upper(): v for k, v in signed_headers(NEW_WORK_ORDER).items()}
    with run_edge(bridge) as edge:
        response = httpx.post(edge.webhook_url, content=NEW_WORK_ORDER, headers=headers)

    assert response.status_code == 200


def test_uri_check_uses_the_configured_public_url(run_edge: Any) -> None:
    """The URL signed is the configured public one, never the request's Host."""
    public = "https://hooks.example.net/webhooks/maintainx"
    bridge, _ = recording_bridge()
    sources = {"default": {"secrets": [SECRET], "public_url": public}}
    with run_edge(bridge, sources=sources) as edge:
        good = edge.deliver(NEW_WORK_ORDER, url=public)
        spoofed = httpx.post(
            edge.webhook_url,
            content=NEW_WORK_ORDER,
            headers={
                **signed_headers(NEW_WORK_ORDER, url=edge.webhook_url),
                "x-forwarded-host": "hooks.example.net",
                "x-forwarded-proto": "https",
            },
        )

    assert good.status_code == 200
    assert spoofed.status_code == 401
    assert spoofed.json()["reason"] == "uri_mismatch"


def test_named_sources_have_their_own_secrets(run_edge: Any) -> None:
    """/webhooks/maintainx/{source} verifies with that source's secrets only."""
    bridge, _ = recording_bridge()
    sources = {"plant-a": {"secrets": ["old-a", "new-a"]}}
    with run_edge(bridge, sources=sources) as edge:
        rotated = edge.deliver(NEW_WORK_ORDER, source="plant-a", secret="new-a")
        wrong = edge.deliver(NEW_WORK_ORDER, source="plant-a", secret=SECRET)
        unknown = edge.deliver(NEW_WORK_ORDER, source="nowhere")

    assert rotated.status_code == 200
    assert wrong.status_code == 401
    assert unknown.status_code == 404


def test_simple_scheme_source_with_event_id_header(run_edge: Any) -> None:
    """The guide's scheme verifies, and its event id header names the event."""
    bridge, seen = recording_bridge()
    body = b'{"event":"workorder.created","data":{"id":12},"timestamp":1789999200}'
    headers = {
        "x-maintainx-signature": hmac_hex(SECRET, body),
        EVENT_ID_HEADER: "evt-guide-1",
    }
    sources = {"guide": {"scheme": "simple", "secrets": [SECRET]}}
    with run_edge(bridge, sources=sources) as edge:
        url = edge.webhook_url + "/guide"
        first = httpx.post(url, content=body, headers=headers)
        again = httpx.post(url, content=body, headers=headers)
        wait_for(lambda: len(seen) == 1)

    assert first.json() == {"status": "accepted", "event_id": "evt-guide-1"}
    assert again.json() == {"status": "duplicate", "event_id": "evt-guide-1"}
    assert seen[0].resource_id == "12"


def test_the_same_delivery_twice_at_once_is_one_event(run_edge: Any) -> None:
    """Two concurrent copies: both 2xx, one stored event, one handler run."""
    bridge, seen = recording_bridge()
    headers = signed_headers(NEW_WORK_ORDER)
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def send(url: str) -> None:
        with httpx.Client() as client:
            barrier.wait()
            answers.append(client.post(url, content=NEW_WORK_ORDER, headers=headers))

    with run_edge(bridge) as edge:
        threads = [
            threading.Thread(target=send, args=(edge.webhook_url,)) for _ in "ab"
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_for(lambda: len(seen) >= 1)
        stored = events_in(edge)
        wait_for(lambda: edge.service.worker._running == {})

    assert sorted(a.status_code for a in answers) == [200, 200]
    assert sorted(a.json()["status"] for a in answers) == ["accepted", "duplicate"]
    assert len({a.json()["event_id"] for a in answers}) == 1
    assert len(stored) == 1
    assert len(seen) == 1


UNAUTHORIZED = [
    pytest.param({}, "missing", id="no-headers"),
    pytest.param({BODY_SIGNATURE_HEADER: "nonsense"}, "malformed", id="garbage"),
    pytest.param(
        {BODY_SIGNATURE_HEADER: "t=,v1="}, "timestamp_unparseable", id="empty"
    ),
    pytest.param(
        {BODY_SIGNATURE_HEADER: "t=99999999999999999999,v1=" + "a" * 64},
        "timestamp_unparseable",
        id="absurd-t",
    ),
    pytest.param(
        {BODY_SIGNATURE_HEADER: "t=1,v1=" + "a" * 64}, "expired", id="expired"
    ),
]


@pytest.mark.parametrize(("headers", "reason"), UNAUTHORIZED)
def test_bad_signatures_are_401_with_a_reason(
    run_edge: Any, headers: dict[str, str], reason: str
) -> None:
    """Each bad signature is a 401 naming why; nothing is stored."""
    bridge, _ = recording_bridge()
    with run_edge(bridge) as edge:
        response = httpx.post(edge.webhook_url, content=NEW_WORK_ORDER, headers=headers)
        stored = events_in(edge)

    assert response.status_code == 401
    assert response.json()["reason"] == reason
    assert stored == []


def test_non_ascii_signature_header_is_401_not_500(run_edge: Any) -> None:
    """Raw latin-1 bytes in a signature header are refused cleanly."""
    bridge, _ = recording_bridge()
    value = b"t=1789999200,v1=" + "é".encode("latin-1") * 64
    with run_edge(bridge) as edge:
        response = httpx.post(
            edge.webhook_url,
            content=NEW_WORK_ORDER,
            headers=[(BODY_SIGNATURE_HEADER.encode(), value)],
        )

    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b"{not json", id="broken"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"orgId":1}', id="no-event-type"),
        pytest.param(b'{"eventType":"NEW_WORK\\u0000ORDER"}', id="nul-in-type"),
        pytest.param(
            b'{"eventType":"NEW_WORK_ORDER","workOrderId":"7\\u00008"}', id="nul-in-id"
        ),
    ],
)
def test_signed_bodies_that_are_not_events_are_400(run_edge: Any, body: bytes) -> None:
    """A correctly signed body that is not a JSON object with its event is 400."""
    bridge, _ = recording_bridge()
    with run_edge(bridge) as edge:
        response = edge.deliver(body)
        stored = events_in(edge)

    assert response.status_code == 400
    assert response.json()["reason"] == "bad_payload"
    assert stored == []


def test_body_over_the_limit_by_content_length_is_413(run_edge: Any) -> None:
    """A declared length over the limit is refused before reading."""
    bridge, _ = recording_bridge()
    body = b'{"eventType":"NEW_WORK_ORDER","pad":"' + b"x" * 2000 + b'"}'
    with run_edge(bridge, server={"max_body_bytes": 1000}) as edge:
        response = edge.deliver(body)

    assert response.status_code == 413


def test_chunked_body_over_the_limit_is_413(run_edge: Any) -> None:
    """Without Content-Length the limit is enforced while reading."""
    bridge, _ = recording_bridge()

    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 100

    with run_edge(bridge, server={"max_body_bytes": 1000}) as edge:
        response = httpx.post(edge.webhook_url, content=chunks())

    assert response.status_code == 413


def test_store_that_cannot_commit_is_503(run_edge: Any) -> None:
    """When the store is locked past its timeout the edge answers 503."""
    bridge, _ = recording_bridge()
    with run_edge(
        bridge, store={"lock_timeout": 0.2}, worker={"enabled": False}
    ) as edge:
        path = edge.service.config.store.url.removeprefix("sqlite:///")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            locked = edge.deliver(NEW_WORK_ORDER)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # The store answers again, but the last delivery did not commit.
        not_ready = httpx.get(edge.url + "/readyz")
        after = edge.deliver(NEW_WORK_ORDER)
        ready = httpx.get(edge.url + "/readyz")

    assert locked.status_code == 503
    assert locked.json()["reason"] == "store_unavailable"
    assert not_ready.status_code == 503
    assert not_ready.json()["reason"].startswith("a delivery could not be committed")
    assert "database is locked" in not_ready.json()["reason"]
    assert after.status_code == 200
    assert after.json()["status"] == "accepted"
    assert ready.json() == {"status": "ready"}


def test_no_bad_input_produces_a_500(run_edge: Any) -> None:
    """A battery of hostile requests: every answer is a 4xx."""
    bridge, _ = recording_bridge()
    good = signed_headers(NEW_WORK_ORDER)
    attempts: list[tuple[bytes, Any]] = [
        (NEW_WORK_ORDER, {**good, "content-length": "abc"}),
        (NEW_WORK_ORDER, {**good, "content-length": "-1"}),
        (b"\x00\xff" * 50, signed_headers(b"\x00\xff" * 50)),
        (b'{"eventType":"' + b"A" * 5000 + b'"}', signed_headers(b"{}")),
        (NEW_WORK_ORDER, {BODY_SIGNATURE_HEADER: "t=1789999200" + ",v1=" * 500}),
        (NEW_WORK_ORDER, {BODY_SIGNATURE_HEADER: "=" * 1000}),
        (b'{"eventType":"NEW_WORK_ORDER","orgId":' + b"9" * 5000 + b"}", {}),
        (json.dumps({"eventType": "X", "deep": [[[[[]]]]] * 100}).encode(), {}),
    ]
    with run_edge(bridge) as edge, httpx.Client() as client:
        statuses = []
        for body, headers in attempts:
            try:
                response = client.post(edge.webhook_url, content=body, headers=headers)
            except httpx.HTTPError:
                # Refused at the protocol level (a bad Content-Length): no 500.
                continue
            statuses.append(response.status_code)

    assert statuses
    assert all(400 <= status < 500 for status in statuses), statuses


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        # Leading zeros are legal; Python's int() refuses over 4,300 digits.
        pytest.param("0" * 5000 + str(len(NEW_WORK_ORDER)), 200, id="zeros"),
        pytest.param("9" * 5000, 413, id="huge"),
        pytest.param(
            "\u00b2".encode("latin-1").decode("latin-1"), 400, id="superscript"
        ),
    ],
)
def test_odd_content_lengths_are_answered(
    run_edge: Any, length: str, expected: int
) -> None:
    """Content-Length values a client library would not send, over a raw socket."""
    bridge, _ = recording_bridge()
    with run_edge(bridge) as edge:
        status = raw_post(edge.webhook_url, NEW_WORK_ORDER, length)

    # The server stack may refuse an odd value itself (400); never a 500.
    assert status in ({expected} if expected == 200 else {expected, 400})


def raw_post(url: str, body: bytes, length: str) -> int:
    """POST `body`, correctly signed, with `length` as its Content-Length."""
    parsed = httpx.URL(url)
    head = [f"POST {parsed.path} HTTP/1.1", f"Host: {parsed.host}"]
    head += [f"{k}: {v}" for k, v in signed_headers(body).items()]
    head += [f"Content-Length: {length}", "Connection: close", "", ""]
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall("\r\n".join(head).encode("latin-1") + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


DEAD = 'mxbridge_deliveries{status="dead"}'


def metric(text: str, name: str) -> float:
    """The value of the sample `name` (with its labels) in a Prometheus page."""
    [value] = [
        line.rsplit(" ", 1)[1]
        for line in text.splitlines()
        if line.startswith(name + " ")
    ]
    return float(value)


def test_metrics_show_the_backlog_and_the_dead(run_edge: Any) -> None:
    """/metrics counts deliveries waiting and dead, and how long one has been due."""
    bridge = Bridge()

    @bridge.on("*", name="broken")
    def broken(event: Event) -> None:
        raise PermanentError("the ERP refused it")

    with run_edge(bridge) as edge:
        edge.deliver(NEW_WORK_ORDER)
        wait_for(lambda: metric(httpx.get(edge.url + "/metrics").text, DEAD) == 1)
        page = httpx.get(edge.url + "/metrics").text
    with run_edge(bridge, worker={"enabled": False}) as edge:
        edge.deliver(NEW_WORK_ORDER.replace(b"}", b', "note": "waits"}', 1))
        time.sleep(0.3)
        waiting = httpx.get(edge.url + "/metrics").text

    assert metric(page, DEAD) == 1
    assert metric(page, 'mxbridge_deliveries{status="pending"}') == 0
    assert metric(page, "mxbridge_oldest_due_age_seconds") == 0
    assert metric(waiting, 'mxbridge_deliveries{status="pending"}') == 1
    assert metric(waiting, DEAD) == 1
    assert 0.3 <= metric(waiting, "mxbridge_oldest_due_age_seconds") < 60


def test_metrics_do_not_wait_behind_a_waiting_write(run_edge: Any) -> None:
    """While a delivery waits for another process's write lock, /metrics still
    reads the backlog: in WAL mode a read needs no lock, and waits for no write."""
    bridge, _ = recording_bridge()
    with run_edge(
        bridge, store={"lock_timeout": 10}, worker={"enabled": False}
    ) as edge:
        edge.deliver(NEW_WORK_ORDER)
        path = edge.service.config.store.url.removeprefix("sqlite:///")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        answers: list[httpx.Response] = []
        second = NEW_WORK_ORDER.replace(b"}", b', "note": "second"}', 1)
        sender = threading.Thread(target=lambda: answers.append(edge.deliver(second)))
        try:
            sender.start()
            time.sleep(0.5)  # ample for it to reach the store and wait there
            try:
                page: str | None = httpx.get(edge.url + "/metrics", timeout=3).text
            except httpx.TimeoutException:
                page = None
            still_waiting = sender.is_alive()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
            sender.join(timeout=15)

    assert page is not None, "/metrics waited for the write lock"
    assert metric(page, 'mxbridge_deliveries{status="pending"}') == 1
    assert still_waiting
    assert [answer.status_code for answer in answers] == [200]


def test_a_store_file_removed_while_serving_accepts_nothing(run_edge: Any) -> None:
    """Its connections would go on committing into the deleted file: after the
    removal nothing is acknowledged, and /readyz says why."""
    bridge, _ = recording_bridge()
    with run_edge(bridge, worker={"enabled": False}) as edge:
        before = edge.deliver(NEW_WORK_ORDER)
        path = Path(edge.service.config.store.url.removeprefix("sqlite:///"))
        path.unlink()
        after = edge.deliver(NEW_WORK_ORDER.replace(b"}", b', "note": "after"}', 1))
        ready = httpx.get(edge.url + "/readyz")

    assert before.status_code == 200
    assert after.status_code == 503
    assert ready.status_code == 503
    assert "was removed or replaced while in use" in ready.json()["reason"]
    assert not path.exists()  # no empty store made in its place


def test_a_trailing_slash_is_the_same_endpoint(run_edge: Any) -> None:
    """A subscription made with a trailing slash is answered, not redirected
    (a redirect's Location comes from the Host header, a proxy's own)."""
    bridge, seen = recording_bridge()
    with run_edge(bridge, sources={"plant": {"secrets": [SECRET]}}) as edge:
        answers = [
            httpx.post(
                edge.webhook_url + path,
                content=NEW_WORK_ORDER,
                headers=signed_headers(NEW_WORK_ORDER),
            )
            for path in ("/", "/plant/")
        ]
        elsewhere = httpx.post(edge.url + "/healthz/")
        wait_for(lambda: len(seen) == 2)

    assert [answer.status_code for answer in answers] == [200, 200]
    assert elsewhere.status_code in (404, 405)


def test_health_and_readiness(run_edge: Any) -> None:
    """/healthz answers while alive, /readyz when the store answers."""
    bridge, _ = recording_bridge()
    with run_edge(bridge) as edge:
        alive = httpx.get(edge.url + "/healthz")
        ready = httpx.get(edge.url + "/readyz")
        metrics = httpx.get(edge.url + "/metrics")

    assert alive.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready"}
    assert "mxbridge_deliveries_received" in metrics.text


def test_event_id_header_is_ignored_where_nothing_signs_it(run_edge: Any) -> None:
    """On MaintainX's scheme an unsigned event id header cannot rename a delivery."""
    bridge, seen = recording_bridge()
    headers = signed_headers(NEW_WORK_ORDER)
    with run_edge(bridge) as edge:
        answers = [
            httpx.post(
                edge.webhook_url,
                content=NEW_WORK_ORDER,
                headers={**headers, EVENT_ID_HEADER: f"replay-{n}"},
            ).json()
            for n in range(3)
        ]
        wait_for(lambda: len(seen) == 1)
        stored = events_in(edge)

    assert [a["status"] for a in answers] == ["accepted", "duplicate", "duplicate"]
    assert len(stored) == 1
    assert not stored[0].id.startswith("replay-")


POISON = [
    pytest.param(
        b'{"eventType":"NEW_WORK_ORDER","orgId":' + b"9" * 25 + b"}", id="int"
    ),
    pytest.param(b'{"eventType":"NEW_\\ud800"}', id="lone-surrogate-type"),
    pytest.param(b'{"eventType":"NEW_WORK_ORDER","workOrderId":"\\udfff"}', id="id"),
    pytest.param(b'{"eventType":"X","n":' + b"1" * 5000 + b"}", id="huge-number"),
    pytest.param(b'{"eventType":"NEW_WORK_ORDER","orgId":"\\u00b2"}', id="digit-like"),
]


@pytest.mark.parametrize("body", POISON)
def test_odd_bodies_never_fail_their_neighbours(run_edge: Any, body: bytes) -> None:
    """An odd signed body sent with good ones: never a 500, the good ones stored."""
    bridge, _ = recording_bridge()
    goods = [NEW_WORK_ORDER.replace(b"118000101", str(n).encode()) for n in range(8)]
    answers: list[httpx.Response] = []

    def send(raw: bytes) -> None:
        answers.append(httpx.post(url, content=raw, headers=signed_headers(raw)))

    with run_edge(bridge) as edge:
        url = edge.webhook_url
        threads = [threading.Thread(target=send, args=(b,)) for b in [body, *goods]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stored = events_in(edge)

    assert all(a.status_code < 500 for a in answers)
    assert sum(a.status_code == 200 for a in answers) >= len(goods)
    assert len(stored) >= len(goods)


def test_a_body_that_never_arrives_is_408(run_edge: Any) -> None:
    """A sender that stalls mid-body is answered 408 after the read timeout."""
    import socket

    bridge, _ = recording_bridge()
    with run_edge(bridge, server={"read_timeout": 0.3}) as edge:
        host, port = edge.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                b"POST /webhooks/maintainx HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            answer = sock.recv(4096)

    assert answer.startswith(b"HTTP/1.1 408")


def test_a_long_unknown_source_is_cut_short(run_edge: Any) -> None:
    """A made-up source name is not echoed back in full."""
    bridge, _ = recording_bridge()
    with run_edge(bridge) as edge:
        response = edge.deliver(NEW_WORK_ORDER, source="x" * 5000)

    assert response.status_code == 404
    assert len(response.text) < 200


def set_immutable(path: Path, on: bool) -> bool:
    """chattr +i / -i: even root cannot then open the file for writing."""
    flag = "+i" if on else "-i"
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    return done.returncode == 0


def test_a_store_that_could_not_be_written_recovers(
    run_edge: Any, tmp_path: Path
) -> None:
    """Started on a file it cannot write: 503 and not ready; then, once it can,
    accepted and ready.

    SQLite opens such a file read-only and a connection stays so for good: the
    edge must open fresh ones, not answer 503 until restarted.
    """
    store_file = tmp_path / "mxbridge.db"
    read_store(f"sqlite:///{store_file}", lambda store: store.ping())
    if not set_immutable(store_file, True):
        pytest.skip("chattr +i is not permitted here")
    bridge, seen = recording_bridge()
    try:
        with run_edge(bridge) as edge:
            refused = edge.deliver(NEW_WORK_ORDER)
            not_ready = httpx.get(edge.url + "/readyz")
            set_immutable(store_file, False)
            accepted = edge.deliver(NEW_WORK_ORDER)
            ready = httpx.get(edge.url + "/readyz")
            wait_for(lambda: len(seen) == 1)
    finally:
        set_immutable(store_file, False)

    assert (refused.status_code, not_ready.status_code) == (503, 503)
    assert not_ready.json()["status"] == "unavailable"
    assert (ready.status_code, accepted.status_code) == (200, 200)
    assert accepted.json()["status"] == "accepted"
