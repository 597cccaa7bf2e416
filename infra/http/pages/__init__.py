"""The dashboard: server-rendered pages over the same read models, tokens and roles as the API.

People sign in with their API bearer token; the session lives in an HttpOnly, SameSite=Strict
cookie and in this process's memory (a restart signs everyone out, which is the safe default).
Pages are read-only; the one form that changes something (sign-out) carries a CSRF token. Every
asset is served from this package, because sites run air-gapped.
"""

from __future__ import annotations

from infra.http.pages.routes import mount_pages

__all__ = ["mount_pages"]
