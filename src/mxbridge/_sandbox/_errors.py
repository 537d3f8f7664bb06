"""The error answers of the sandbox, in MaintainX's two body shapes."""

from __future__ import annotations

from typing import Any

__all__ = ["SandboxError", "field_error", "not_found", "query_error"]


class SandboxError(Exception):
    """An answer other than success: HTTP `status` with JSON `body`."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def field_error(path: str | None, message: str, value: Any = None) -> SandboxError:
    """A 400 on a write: ``{"errors": [{"error", "fieldPath", "fieldValue"}]}``."""
    item: dict[str, Any] = {"error": message}
    if path is not None:
        item["fieldPath"] = path
    if isinstance(value, str | int | float | bool):
        item["fieldValue"] = value
    return SandboxError(400, {"errors": [item]})


def query_error(message: str) -> SandboxError:
    """A 400 on a read: ``{"error": "..."}``."""
    return SandboxError(400, {"error": message})


def not_found(kind: str) -> SandboxError:
    """A 404 the way MaintainX words it, e.g. ``{"error": "Work Order Not Found"}``."""
    return SandboxError(404, {"error": f"{kind} Not Found"})
