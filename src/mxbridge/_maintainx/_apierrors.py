"""Turn a MaintainX error answer into an exception of the `_errors` tree.

MaintainX answers errors in two shapes: ``{"errors": [{"error", "fieldPath",
"fieldValue"}]}`` on writes, ``{"error": "..."}`` on reads and 404s. Both are
kept as ``(fieldPath, error)`` pairs so the message carries MaintainX's words.
"""

from __future__ import annotations

import json
from typing import Any

from mxbridge._errors import (
    ApiError,
    ApiUnavailableError,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
)

__all__ = ["error_from_answer", "parse_error_body"]

ErrorPairs = tuple[tuple[str | None, str], ...]

AUTH_MESSAGE = (
    "MaintainX refused the API key (401): it is wrong, revoked or missing; "
    "set MAINTAINX_API_KEY to a valid key"
)


def parse_error_body(content: bytes) -> ErrorPairs:
    """Return the ``(fieldPath, error)`` pairs of an error body, () if none."""
    try:
        body: Any = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return ()
    if not isinstance(body, dict):
        return ()
    pairs = [_pair(item) for item in body.get("errors") or () if isinstance(item, dict)]
    if isinstance(body.get("error"), str):
        pairs.append((None, body["error"]))
    return tuple(pair for pair in pairs if pair[1])


def _pair(item: dict[str, Any]) -> tuple[str | None, str]:
    path = item.get("fieldPath")
    return (path if isinstance(path, str) else None, str(item.get("error") or ""))


def _describe(pairs: ErrorPairs) -> str:
    return "; ".join(f"{path}: {text}" if path else text for path, text in pairs)


def error_from_answer(method: str, path: str, status: int, content: bytes) -> ApiError:
    """Return the exception for a final error answer to ``method path``."""
    pairs = parse_error_body(content)
    if status == 401:
        return AuthenticationError(AUTH_MESSAGE, status=status, errors=pairs)
    said = _describe(pairs) or "no error text"
    message = f"MaintainX answered {status} to {method} {path}: {said}"
    cls: type[ApiError] = ApiError
    if status == 404:
        cls = NotFoundError
    elif status == 429:
        cls = RateLimitedError
        message = f"{message} (still rate limited after retrying)"
    elif status >= 500:
        cls = ApiUnavailableError
    return cls(message, status=status, errors=pairs)
