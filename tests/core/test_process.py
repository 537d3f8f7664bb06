"""`mxbridge serve` as a real process: stops, kills, restarts, and the CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import SECRET, signed_headers, wait_for

pytestmark = pytest.mark.slow

MXBRIDGE = [sys.executable, "-m", "mxbridge"]
APP = """
import os, time
from mxbridge import Bridge

bridge = Bridge()
PAUSE = float(os.environ.get("HANDLER_PAUSE", "0"))

@bridge.on("*", name="record")
def record(event):
    time.sleep(PAUSE)
    with open(os.environ["HANDLED_FILE"], "a") as out:
        out.write(event.id + "\\n")
"""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Bridgehead:
    """Files and settings of one service under test, across restarts."""

    root: Path
    port: int

    @property
    def url(self) -> str:
        """The default source's endpoint."""
        return f"http://127.0.0.1:{self.port}/webhooks/maintainx"

    @property
    def handled(self) -> list[str]:
        """Event ids the handler has finished, in order, repeats included."""
        path = self.root / "handled.txt"
        return path.read_text().split() if path.exists() else []

    def env(self, pause: float = 0) -> dict[str, str]:
        """The environment of the service and the CLI."""
        return {
            **os.environ,
            "MAINTAINX_WEBHOOK_SECRET": SECRET,
            "MXBRIDGE_CONFIG": str(self.root / "mxbridge.toml"),
            "HANDLED_FILE": str(self.root / "handled.txt"),
            "HANDLER_PAUSE": str(pause),
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an mxbridge command against this service's configuration."""
        return subprocess.run(
            [*MXBRIDGE, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(
        self, pause: float = 0, *extra: str, log_to: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `mxbridge serve` (its log in serve.log) and wait until it is ready."""
        log_path = log_to or self.root / "serve.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [*MXBRIDGE, "serve", *extra],
                env=self.env(pause),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        ready = f"http://127.0.0.1:{self.port}/readyz"
        wait_for(lambda: _answers(ready) or process.poll() is not None, timeout=20)
        exited = log_path.read_text() if log_path.is_file() else "serve exited"
        assert process.poll() is None, exited
        return process

    def one_event_handled(self) -> str:
        """Start serve, deliver one event, wait until it is handled, stop: its id."""
        process = self.start()
        try:
            with httpx.Client() as client:
                event_id = send(self.url, 1, client)
            wait_for(lambda: len(self.handled) == 1)
        finally:
            process.terminate()
            process.wait(timeout=20)
        assert event_id is not None
        return event_id


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def bridgehead(tmp_path: Path) -> Bridgehead:
    """A configuration and app for a service on a free port."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    (tmp_path / "mxbridge.toml").write_text(
        f'app = "{tmp_path / "app.py"}:bridge"\n'
        f"[server]\nport = {port}\n"
        f'[store]\nurl = "sqlite:///{tmp_path / "mxbridge.db"}"\n'
        "[worker]\npoll_interval = 0.1\ngrace_seconds = 0.5\nconcurrency = 2\n"
        '[sources.default]\nsecrets_env = "MAINTAINX_WEBHOOK_SECRET"\n'
    )
    return Bridgehead(tmp_path, port)


def body(n: int) -> bytes:
    """A distinct, realistic delivery body."""
    return (
        f'{{"eventType":"WORK_ORDER_CHANGE","occurredAt":"2026-09-21T13:26:02.003Z",'
        f'"orgId":48213,"workOrderId":{n},"userId":520017}}'
    ).encode()


def send(url: str, n: int, client: httpx.Client) -> str | None:
    """Deliver body `n`; the event id when acknowledged, else None."""
    try:
        response = client.post(url, content=body(n), headers=signed_headers(body(n)))
    except httpx.HTTPError:
        return None
    return response.json()["event_id"] if response.status_code == 200 else None


def test_send_test_reaches_a_handler(bridgehead: Bridgehead) -> None:
    """`mxbridge send-test` signs a delivery that `serve` verifies and handles."""
    process = bridgehead.start()
    try:
        result = bridgehead.cli("send-test", "workorder.completed")
        wait_for(lambda: len(bridgehead.handled) == 1)
    finally:
        process.terminate()
        process.wait(timeout=20)

    assert result.returncode == 0, result.stderr
    assert '"status":"accepted"' in result.stdout
    assert bridgehead.handled[0] in result.stdout


def test_stopping_with_deliveries_pending_loses_nothing(bridgehead: Bridgehead) -> None:
    """SIGTERM with a backlog; after a restart every acknowledged event is handled."""
    process = bridgehead.start(pause=0.2)
    with httpx.Client() as client:
        acked = [send(bridgehead.url, n, client) for n in range(30)]
    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down cleanly, then re-raises the signal it caught.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "worker stopped" in (bridgehead.root / "serve.log").read_text()
    handled_before = set(bridgehead.handled)

    process = bridgehead.start()
    try:
        wait_for(lambda: set(bridgehead.handled) >= set(acked), timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=20)

    assert None not in acked
    assert len(handled_before) < 30
    assert set(bridgehead.handled) == set(acked)


def test_sigkill_under_load_loses_no_acknowledged_event(bridgehead: Bridgehead) -> None:
    """Killed mid-load; after a restart every 200 is stored and handled."""
    process = bridgehead.start()
    acked: list[str] = []
    stop = threading.Event()

    def load(offset: int) -> None:
        with httpx.Client(timeout=5) as client:
            for n in range(offset, offset + 5000):
                if stop.is_set():
                    return
                event_id = send(bridgehead.url, n, client)
                if event_id:
                    acked.append(event_id)

    threads = [threading.Thread(target=load, args=(i * 10000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acked) >= 300, timeout=30)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    process = bridgehead.start()
    try:
        listed = bridgehead.cli("events", "list", "--limit", "10000").stdout
        wait_for(lambda: set(bridgehead.handled) >= set(acked), timeout=60)
    finally:
        process.terminate()
        process.wait(timeout=20)

    stored = {line.split()[2] for line in listed.splitlines()}
    assert set(acked) <= stored
    assert set(acked) <= set(bridgehead.handled)


def test_events_and_dead_commands(bridgehead: Bridgehead) -> None:
    """list, show, replay, dead list and dead retry read and re-arm the store."""
    event_id = bridgehead.one_event_handled()

    listed = bridgehead.cli("events", "list", "--name", "workorder.*")
    shown = bridgehead.cli("events", "show", event_id)
    replayed = bridgehead.cli("events", "replay", event_id)
    dead = bridgehead.cli("dead", "list")
    retried = bridgehead.cli("dead", "retry", "--all")

    not_dead = bridgehead.cli("dead", "retry", "999")
    process = bridgehead.start()
    try:
        wait_for(lambda: len(bridgehead.handled) == 2)
    finally:
        process.terminate()
        process.wait(timeout=20)
    shown_again = bridgehead.cli("events", "show", event_id)

    assert event_id in listed.stdout
    assert "succeeded=1" in listed.stdout
    assert '"workOrderId": 1' in shown.stdout
    assert "record: succeeded, 1 attempt(s)" in shown.stdout
    assert "re-armed 1 delivery" in replayed.stdout
    assert dead.stdout.strip() == "no dead deliveries"
    assert "re-armed 0 dead deliveries" in retried.stdout
    assert (not_dead.returncode, not_dead.stdout) == (1, "")
    assert not_dead.stderr.strip().splitlines() == [
        "mxbridge: error: re-armed 0 of the 1 deliveries given: the others are not "
        "dead, or not there (see `mxbridge dead list`)"
    ]
    # The replay's attempt starts a new count; the history numbers both.
    assert (
        "record: succeeded, 1 attempt(s) since re-armed, 2 in all" in shown_again.stdout
    )
    numbered = [
        line.split()[1]
        for line in shown_again.stdout.splitlines()
        if line.strip().startswith("attempt #")
    ]
    assert [n.split(".")[1] for n in numbered] == ["1", "2"]


BROKEN_APP = """
from mxbridge import Bridge

bridge = Bridge()

@bridge.on("*", name="broken", max_attempts=1)
def broken(event):
    return {}["no such key"]
"""


def test_a_dead_delivery_from_list_to_retry(bridgehead: Bridgehead) -> None:
    """dead list and events show count attempts alike and show where a handler
    raised; dead retry takes the #N it shows, and points an event id to replay."""
    (bridgehead.root / "app.py").write_text(BROKEN_APP)
    process = bridgehead.start()
    try:
        with httpx.Client() as client:
            event_id = send(bridgehead.url, 1, client)
        wait_for(lambda: event_id in bridgehead.cli("dead", "list").stdout, timeout=20)
        [number] = [
            line.split()[0]
            for line in bridgehead.cli("dead", "list").stdout.splitlines()
        ]
        by_event = bridgehead.cli("dead", "retry", str(event_id))
        retried = bridgehead.cli("dead", "retry", number)
        wait_for(
            lambda: "2 in all" in bridgehead.cli("dead", "list").stdout, timeout=20
        )
        dead = bridgehead.cli("dead", "list")
        shown = bridgehead.cli("events", "show", str(event_id))
    finally:
        process.terminate()
        process.wait(timeout=20)

    assert number.startswith("#")
    assert by_event.returncode == 2
    assert f"mxbridge events replay {event_id}" in by_event.stderr
    assert retried.stdout.strip() == "re-armed 1 dead delivery"
    assert "broken  1 attempt(s) since re-armed, 2 in all  KeyError" in dead.stdout
    assert "broken: dead, 1 attempt(s) since re-armed, 2 in all" in shown.stdout
    assert "last error: KeyError: 'no such key'" in shown.stdout
    # The traceback, indented under it, names the line that raised.
    assert 'app.py", line 8, in broken' in shown.stdout


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["serve", "--port", "abc"], id="bad-port"),
        pytest.param(["nosuch"], id="unknown-command"),
        pytest.param(["events", "list", "--status", "weird"], id="bad-choice"),
        pytest.param(["events", "show", "evt_missing"], id="missing-event"),
        pytest.param(["send-test", "workorder.nothing"], id="unknown-event"),
        pytest.param(
            ["send-test", "workorder.created", "--url", "http://127.0.0.1:9/x"],
            id="unreachable",
        ),
        pytest.param(["serve", "--config", "/nonexistent.toml"], id="missing-config"),
        pytest.param(["serve", "--app", "no_such_module:bridge"], id="missing-app"),
        pytest.param(["dead", "retry"], id="retry-nothing"),
        pytest.param(
            ["send-test", "workorder.created", "--source", "nosuch"],
            id="unknown-source",
        ),
        pytest.param(["dead", "retry", "nosuch"], id="retry-not-a-number"),
        pytest.param(["dead", "retry", "0"], id="retry-zero"),
        pytest.param(["dead", "retry", "evt_0a1b"], id="retry-an-event-id"),
    ],
)
def test_bad_arguments_are_one_line_and_non_zero(
    bridgehead: Bridgehead, args: list[str]
) -> None:
    """Every mistake is one line on stderr and a non-zero exit, no traceback."""
    result = bridgehead.cli(*args)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mxbridge: error: ")
    assert "Traceback" not in result.stderr


def test_every_command_has_help(bridgehead: Bridgehead) -> None:
    """--help works for each command and exits 0."""
    for args in (
        ["serve"],
        ["worker"],
        ["send-test"],
        ["events", "list"],
        ["events", "show"],
        ["events", "replay"],
        ["dead", "list"],
        ["dead", "retry"],
    ):
        result = bridgehead.cli(*args, "--help")
        assert result.returncode == 0, args
        assert "Usage: mxbridge" in result.stdout


def test_logs_are_json_lines_without_secrets_or_signatures(
    bridgehead: Bridgehead,
) -> None:
    """Deliveries good and bad are logged as JSON; no secret or signature shows."""
    import json

    process = bridgehead.start()
    forged = signed_headers(body(2), secret="attacker-secret")
    try:
        with httpx.Client() as client:
            good = signed_headers(body(1))
            client.post(bridgehead.url, content=body(1), headers=good)
            client.post(bridgehead.url, content=body(2), headers=forged)
        wait_for(lambda: len(bridgehead.handled) == 1)
    finally:
        process.terminate()
        process.wait(timeout=20)

    log = (bridgehead.root / "serve.log").read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    signatures = [
        v.split("v1=")[1] for v in (*good.values(), *forged.values()) if "v1=" in v
    ]
    [starting] = [line for line in lines if line.get("event") == "starting"]
    assert starting["listening"] == bridgehead.url
    assert any(line.get("event") == "delivery received" for line in lines)
    assert any(line.get("reason") == "mismatch" for line in lines)
    assert SECRET not in log
    assert "attacker-secret" not in log
    assert not any(signature in log for signature in signatures)


def test_a_log_that_cannot_be_written_loses_no_delivery(
    bridgehead: Bridgehead,
) -> None:
    """With its log on a full disk (/dev/full) the service still acknowledges,
    handles, and counts the log writes it lost."""
    process = bridgehead.start(log_to=Path("/dev/full"))
    try:
        with httpx.Client() as client:
            acked = [send(bridgehead.url, n, client) for n in range(5)]
            wait_for(lambda: set(bridgehead.handled) == set(acked), timeout=20)
            page = client.get(bridgehead.url.replace("/webhooks/maintainx", "/metrics"))
    finally:
        process.terminate()
        process.wait(timeout=20)

    assert None not in acked
    [lost] = [
        line
        for line in page.text.splitlines()
        if line.startswith("mxbridge_log_lines_lost ")
    ]
    # At least a line per delivery received and per handler attempt.
    assert float(lost.split()[1]) >= 10


def test_a_separate_worker_process_runs_the_handlers(bridgehead: Bridgehead) -> None:
    """`serve --no-worker` only stores; `mxbridge worker` runs the handlers."""
    edge = bridgehead.start(0, "--no-worker")
    with (bridgehead.root / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [*MXBRIDGE, "worker"], env=bridgehead.env(), stderr=log
        )
    try:
        with httpx.Client() as client:
            acked = [send(bridgehead.url, n, client) for n in range(5)]
        wait_for(lambda: set(bridgehead.handled) == set(acked), timeout=20)
    finally:
        for process in (edge, worker):
            process.terminate()
            process.wait(timeout=20)

    assert "worker stopped" in (bridgehead.root / "worker.log").read_text()
    assert "worker started" not in (bridgehead.root / "serve.log").read_text()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"sources = 5\n", id="sources-not-a-table"),
        pytest.param(b"[sources]\nx = 5\n", id="source-not-a-table"),
        pytest.param(b"\xff\xfe = 1\n", id="not-utf8"),
        pytest.param(b'[store]\nurl = "sqlite:////proc/none/x.db"\n', id="store-dir"),
        pytest.param(b'[maintainx]\nbase_url = "http://[::1/v1"\n', id="bad-url"),
        pytest.param(b"[poll]\nlookback = 1e300\n", id="absurd-lookback"),
    ],
)
def test_broken_configuration_files_are_one_line(
    bridgehead: Bridgehead, content: bytes
) -> None:
    """A broken file is one line naming what is wrong, for any command."""
    path = bridgehead.root / "broken.toml"
    path.write_bytes(content)

    result = bridgehead.cli("events", "list", "--config", str(path))

    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "unexpected" not in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_an_unreachable_store_is_one_line(bridgehead: Bridgehead) -> None:
    """serve checks its store first; a store it cannot reach is one clear line."""
    result = subprocess.run(
        [*MXBRIDGE, "serve"],
        env={
            **bridgehead.env(),
            "MXBRIDGE_STORE_URL": "postgresql+psycopg://u:hunter2@127.0.0.1:1/db",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.strip().startswith("mxbridge: error: store error:")
    assert "hunter2" not in result.stderr + result.stdout


def test_looking_into_a_store_that_is_not_there(bridgehead: Bridgehead) -> None:
    """events list with a configuration nothing was received with: said, not made."""
    elsewhere = bridgehead.root / "elsewhere"
    elsewhere.mkdir()
    config = elsewhere / "mxbridge.toml"
    config.write_text('[store]\nurl = "sqlite:///mxbridge.db"\n')

    result = bridgehead.cli("events", "list", "--config", str(config))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"mxbridge: error: no store at {elsewhere / 'mxbridge.db'}: nothing has been "
        "received with this configuration (is --config the one serve uses?)"
    ]
    assert not (elsewhere / "mxbridge.db").exists()


def test_looking_into_a_busy_store_waits_for_no_writer(bridgehead: Bridgehead) -> None:
    """list and show only read: a writer holding the lock does not stop them."""
    import sqlite3

    event_id = bridgehead.one_event_handled()

    writer = sqlite3.connect(bridgehead.root / "mxbridge.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        listed = bridgehead.cli("events", "list")
        shown = bridgehead.cli("events", "show", event_id)
        dead = bridgehead.cli("dead", "list")
    finally:
        writer.close()

    assert (listed.returncode, shown.returncode, dead.returncode) == (0, 0, 0), (
        listed.stderr + shown.stderr + dead.stderr
    )
    assert event_id in listed.stdout
    assert "record: succeeded, 1 attempt(s)" in shown.stdout
    assert dead.stdout.strip() == "no dead deliveries"


def test_what_a_delivery_brought_is_shown_spelled_out(bridgehead: Bridgehead) -> None:
    """A lone surrogate in a payload and an escape sequence in an event type are
    shown as text, not sent to the terminal (or refused by its encoding)."""
    raw = b'{"eventType":"ODD\\u001b[2J","workOrderId":7,"title":"\\udfff"}'
    process = bridgehead.start()
    try:
        answer = httpx.post(bridgehead.url, content=raw, headers=signed_headers(raw))
    finally:
        process.terminate()
        process.wait(timeout=20)
    event_id = answer.json()["event_id"]

    listed = bridgehead.cli("events", "list")
    shown = bridgehead.cli("events", "show", event_id)

    assert (listed.returncode, shown.returncode) == (0, 0), shown.stderr
    assert "ODD\\x1b[2J" in listed.stdout
    assert "\x1b" not in listed.stdout + shown.stdout
    assert '"title": "\\udfff"' in shown.stdout
