"""Conditions on dotted paths: equals, one of, present, greater than."""

from __future__ import annotations

from typing import Any

import pytest

from mxbridge._errors import ConfigError
from mxbridge._rules._conditions import ConditionConfig, compile_condition

VARIABLES: dict[str, Any] = {
    "event": {"type": "NEW_WORK_ORDER", "resource_id": "118000102"},
    "payload": {"newStatus": "DONE", "progress": {"doneCount": 2}},
    "record": {"priority": "HIGH", "assetId": 90211, "assignees": [{"id": 520044}]},
}


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        pytest.param({"path": "record.priority", "equals": "HIGH"}, True, id="eq"),
        pytest.param({"path": "record.priority", "equals": "LOW"}, False, id="ne"),
        pytest.param({"path": "record.assetId", "one_of": ["90211", 1]}, True, id="in"),
        pytest.param({"path": "record.assetId", "one_of": [1, 2]}, False, id="notin"),
        pytest.param({"path": "record.dueDate", "present": False}, True, id="absent"),
        pytest.param({"path": "record.priority", "present": True}, True, id="here"),
        pytest.param(
            {"path": "payload.progress.doneCount", "greater_than": 1}, True, id="gt"
        ),
        pytest.param({"path": "payload.newStatus", "greater_than": 1}, False, id="nan"),
        pytest.param({"path": "record.assignees.0.id", "equals": 520044}, True, id="i"),
        pytest.param({"path": "event.resource_id", "equals": 118000102}, True, id="id"),
    ],
)
def test_condition_tests_values_at_paths(
    condition: dict[str, Any], holds: bool
) -> None:
    """Each test on a dotted path; ids compare as text or number alike."""
    compiled = compile_condition(ConditionConfig.model_validate(condition))

    assert compiled.holds(VARIABLES) is holds


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("priority", id="no-root"),
        pytest.param("record..priority", id="empty-key"),
        pytest.param("event.colour", id="unknown-event-field"),
        pytest.param("record.pri ority", id="space"),
    ],
)
def test_bad_paths_are_config_errors(path: str) -> None:
    """A path that can never resolve is refused when the rule is built."""
    with pytest.raises(ConfigError, match="path"):
        compile_condition(ConditionConfig(path=path, present=True))


def test_explain_says_what_was_found() -> None:
    """rules test explains a false condition with the value found."""
    compiled = compile_condition(ConditionConfig(path="record.priority", equals="LOW"))

    assert (
        compiled.explain(VARIABLES) == "record.priority is 'HIGH', wanted equals 'LOW'"
    )
