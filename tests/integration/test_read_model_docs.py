"""Every question's example query in docs/read-models.md runs through plain sqlite3 and psql alike."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.service import EscalationService
from infra.local.postgres import PostgresAddress
from infra.local.stories import ldap_proxy_story, quiet_escalation
from infra.messaging.envelope import as_recorded
from tests.fakes import SteppingClock, project

DOC = Path(__file__).parents[2] / "docs" / "read-models.md"
QUESTIONS = (
    "active",
    "compliance",
    "durations",
    "stalls",
    "workload",
    "scope",
    "uncertainty",
    "emergencies",
    "follow-up-actions",
)
MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def documented_queries() -> dict[str, str]:
    section = DOC.read_text().split("## The questions in plain SQL", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"### ([\w-]+)\n\n```sql\n(.*?)```", section, flags=re.DOTALL))


def psql() -> str:
    found = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    if not Path(found).exists():
        pytest.skip("no psql binary")
    return found


@pytest.fixture(scope="module")
def events() -> list:  # type: ignore[type-arg]
    service = EscalationService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=SteppingClock(MONDAY + timedelta(days=20))
    )
    ids = [
        ldap_proxy_story(service, MONDAY),
        quiet_escalation(service, MONDAY + timedelta(days=14), customer="Initech", region="AMER", lead="ana"),
    ]
    history = [event for key in ids for event in service.history(key)]
    return [as_recorded(event, position) for position, event in enumerate(history, start=1)]


def test_the_docs_ask_every_question() -> None:
    assert tuple(documented_queries()) == QUESTIONS


@pytest.mark.postgres
def test_every_documented_query_gives_the_same_rows_in_sqlite3_and_psql(
    events: list, tmp_path: Path, postgres_db: PostgresAddress
) -> None:  # type: ignore[type-arg]
    lite = tmp_path / "reporting.db"
    project(sa.create_engine(f"sqlite:///{lite}"), events)
    project(sa.create_engine(postgres_db.url), events)
    url = postgres_db.url.replace("postgresql+psycopg", "postgresql")

    for name, query in documented_queries().items():
        with sqlite3.connect(lite) as conn:
            from_sqlite = [tuple(_text(v) for v in row) for row in conn.execute(query)]
        ran = subprocess.run(
            [psql(), url, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ran.returncode == 0, f"{name}: {ran.stderr}"
        from_psql = [tuple(_text(v) for v in line.split("\t")) for line in ran.stdout.splitlines() if line]

        assert from_psql == from_sqlite, name
        if name != "follow-up-actions":  # the stories add none
            assert from_sqlite, f"{name} gave no rows on the story data"


def _text(value: object) -> str:
    """psql prints every value as text: compare as text, with numbers in one form."""
    if value is None or value == "":
        return ""
    try:
        return repr(round(float(str(value)), 6))
    except ValueError:
        return {"t": "1", "f": "0", "True": "1", "False": "0"}.get(str(value), str(value))
