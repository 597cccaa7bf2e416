"""Outbound URLs: checked before they are stored, and shown only without credentials or query."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class OutboundUrlError(ValueError):
    """An outbound URL we will not call; the text says what to change."""


def check_url(url: str, *, allow_plain_http: bool = False) -> str:
    """The URL if it is one we may post to: https (http only to loopback or when allowed), no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"{redacted(url)!r} is not an http(s) URL with a host; give e.g. https://hooks.example.com/escalations"
        raise OutboundUrlError(msg)
    if parts.username or parts.password:
        msg = (
            f"{redacted(url)} carries credentials in the URL; remove them "
            "(webhooks are authenticated by their signature)"
        )
        raise OutboundUrlError(msg)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK and not allow_plain_http:
        msg = (
            f"{redacted(url)} is plain http; use https, "
            "or set ESCALATIONS_NOTIFY_ALLOW_PLAIN_HTTP=true on a closed network"
        )
        raise OutboundUrlError(msg)
    return url


def redacted(url: str) -> str:
    """Scheme, host, port and path only: never user info, query or fragment (they may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}{parts.path}"
