"""The poll, reconcile and backfill commands, end to end against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import RunningSandbox, read_store
from mxbridge._cli import cli
from mxkit import admin, new_work_order, set_status


@pytest.fixture
def config_file(sandbox: RunningSandbox, tmp_path: Path) -> Path:
    """A configuration pointing at the sandbox and a store in tmp_path."""
    admin(sandbox, "/rate-limit", {"limit": None})
    path = tmp_path / "mxbridge.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n'
        f'[maintainx]\nbase_url = "{sandbox.api_url}"\n'
        "requests_per_minute = 6000\n",
        "utf-8",
    )
    return path


def _invoke(sandbox: RunningSandbox, *args: str) -> str:
    env = {"MAINTAINX_API_KEY": sandbox.api_key}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _events(config_file: Path) -> list[tuple[str, str, int]]:
    url = next(
        line.split('"')[1]
        for line in config_file.read_text("utf-8").splitlines()
        if line.startswith("url")
    )

    found = read_store(url, lambda store: store.list_events(limit=100))
    return [(e.event_type, e.source, sum(e.statuses.values())) for e in found]


def test_backfill_stores_history_quietly_and_resumes(
    sandbox: RunningSandbox, config_file: Path
) -> None:
    """backfill --since stores one event per work order without deliveries;
    run again, it resumes from its cursor and stores nothing twice."""
    for n in range(4):
        new_work_order(sandbox, f"old {n}")

    args = ("backfill", "--since", "2020-01-01", "--config", str(config_file))

    first, second = _invoke(sandbox, *args), _invoke(sandbox, *args)

    assert "4 event(s) stored" in first
    assert "0 event(s) stored" in second
    assert _events(config_file) == [("NEW_WORK_ORDER", "backfill", 0)] * 4


def test_poll_and_reconcile_commands_run_once(
    sandbox: RunningSandbox, config_file: Path
) -> None:
    """poll stores what changed; reconcile records its baseline and says so."""
    wo_id = new_work_order(sandbox)
    set_status(sandbox, wo_id, "IN_PROGRESS")

    polled = _invoke(sandbox, "poll", "--config", str(config_file))
    reconciled = _invoke(sandbox, "reconcile", "--config", str(config_file))

    assert "poll: 1 new event(s) stored" in polled
    assert "reconcile: 0 changed" in reconciled


def test_poll_without_api_key_is_one_line_error(config_file: Path) -> None:
    """Without an API key the command fails with one line and exit 1."""
    result = CliRunner().invoke(
        cli, ["poll", "--config", str(config_file)], env={"MAINTAINX_API_KEY": ""}
    )

    assert result.exit_code != 0
    assert "MAINTAINX_API_KEY" in str(result.exception or result.output)
