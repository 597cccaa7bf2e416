"""Schemathesis against the live API (in-process ASGI), every check on: the OpenAPI document is the API's behaviour.

Each operation gets a bounded number of generated requests, positive and negative, with a manager's
token; every response must carry a documented status, media type, headers and body schema, and no
request may get a 500. Domain refusals of well-formed requests (an unknown escalation, a stale
version, a handbook rule) are documented statuses, so they count as accepted positive data.
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from infra.bootstrap import build_service
from infra.http.app import create_app
from infra.settings import Settings
from projections.tables import create_schema

TOKEN = "fuzz-manager"  # noqa: S105 - a test token
WELL_FORMED_BUT_REFUSED = ["200", "201", "401", "403", "404", "409", "412", "422", "428", "503"]


def _app(tmp: Path) -> object:
    read_model = sa.create_engine(f"sqlite:///{tmp / 'reporting.db'}")
    create_schema(read_model)
    service = build_service(Settings(data_dir=tmp))
    return create_app(service, read_model, {TOKEN: "manager:fuzz.manager"})


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "generation": {"max-examples": 12, "database": "none"},
            "checks": {
                "positive_data_acceptance": {"expected-statuses": WELL_FORMED_BUT_REFUSED},
                # 503 is the documented "read model behind, retry after Retry-After", not a failure.
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
                # A body over the size limit is refused as 413 before anyone reads it, valid or not.
                "negative_data_rejection": {
                    "expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428"]
                },
                # A missing If-Match is 428 Precondition Required (RFC 6585), the status made for it.
                "missing_required_header": {"expected-statuses": ["400", "401", "403", "406", "415", "422", "428"]},
            },
        }
    )


_DIR = Path(__import__("tempfile").mkdtemp(prefix="ledger-fuzz-"))
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(_DIR), config=_config())


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_behaves_as_documented(case: schemathesis.Case) -> None:
    timeout = (case.query or {}).get("timeout")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        case.query["timeout"] = min(timeout, 0.1)  # a read-your-writes wait, kept short: the suite has minutes
    case.call_and_validate()
