"""Where each managed subscription is delivered, and what MaintainX accepts. Pure.

Each subscription gets its own path under the public URL,
``<public_url>/<source>``, so the edge finds its secret from the path alone.
The public URL is where MaintainX reaches this edge's ``/webhooks/maintainx``;
one given with no path at all gets ``/webhooks/maintainx`` added.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from mxbridge._config import DEFAULT_SOURCE
from mxbridge._errors import ConfigError

__all__ = [
    "MAX_URL_LENGTH",
    "check_url",
    "is_real_maintainx",
    "new_source_name",
    "source_from_url",
    "subscription_base",
    "subscription_url",
]

# MaintainX refuses a subscription URL longer than this.
MAX_URL_LENGTH = 512
EDGE_PATH = "/webhooks/maintainx"


def new_source_name(event_type: str) -> str:
    """A fresh source name for a subscription: ``mx-work-order-change-1a2b3c4d``."""
    return f"mx-{event_type.lower().replace('_', '-')}-{secrets.token_hex(4)}"


def subscription_base(public_url: str) -> str:
    """The public URL under which subscriptions get their own paths."""
    base = public_url.rstrip("/")
    if not urlsplit(base).path:
        base += EDGE_PATH
    return base


def subscription_url(public_url: str, source: str) -> str:
    """The URL MaintainX should post a subscription's deliveries to."""
    return f"{subscription_base(public_url)}/{source}"


def is_real_maintainx(base_url: str) -> bool:
    """True when `base_url` is MaintainX's own API, not a sandbox or proxy."""
    host = urlsplit(base_url).hostname or ""
    return host == "getmaintainx.com" or host.endswith(".getmaintainx.com")


def check_url(url: str, base_url: str) -> None:
    """Raise `ConfigError` for a URL MaintainX would refuse or could not reach."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"public URL {url!r} is not an absolute http(s) URL")
    if len(url) > MAX_URL_LENGTH:
        raise ConfigError(
            f"subscription URL is {len(url)} characters; MaintainX accepts at most "
            f"{MAX_URL_LENGTH}"
        )
    if parts.scheme != "https" and is_real_maintainx(base_url):
        raise ConfigError(
            f"MaintainX delivers only to https URLs; {parts.scheme}:// was given"
        )


def source_from_url(url: str) -> str:
    """The source an existing subscription's URL names: its last path segment.

    A URL ending in ``/webhooks/maintainx`` (or with no path) is the
    ``default`` source.
    """
    path = urlsplit(url).path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if not path or path.endswith(EDGE_PATH):
        return DEFAULT_SOURCE
    if not all(c.isalnum() or c in "-_" for c in last):
        raise ConfigError(
            f"the URL {url!r} does not end in a usable source name (letters, digits,"
            " - and _): point the subscription at <public URL>/NAME first"
        )
    return last
