"""The reporting read model's tables and views (SQLite and PostgreSQL from one definition).

Times are stored as ISO-8601 UTC text, so both dialects hold byte-identical rows and a rebuild can
be compared table by table. Analysts query these from any SQL client; `docs/read-models.md`
describes each column.
"""

from __future__ import annotations

import sqlalchemy as sa

from domain.uncertainties import RISK
from projections.facts import EscalationFacts, facts_from_json, facts_to_json

metadata = sa.MetaData()
Text = sa.Text

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("customer", Text, nullable=False),
    sa.Column("region", sa.String(8), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("account_owner", Text, nullable=False),
    sa.Column("dri_manager", Text, nullable=False),
    sa.Column("channel", Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stalled", sa.Boolean, nullable=False),
    sa.Column("lead_engineer", Text),
    sa.Column("opened_at", sa.String(40), nullable=False),
    sa.Column("lead_assigned_at", sa.String(40)),
    sa.Column("scope_defined_at", sa.String(40)),
    sa.Column("monitoring_started_at", sa.String(40)),
    sa.Column("closed_at", sa.String(40)),
    sa.Column("outcome", sa.String(16)),
    sa.Column("last_update_at", sa.String(40)),
    sa.Column("updates_posted", sa.Integer, nullable=False),
    sa.Column("exit_criteria_total", sa.Integer, nullable=False),
    sa.Column("exit_criteria_met", sa.Integer, nullable=False),
    sa.Column("stall_count", sa.Integer, nullable=False),
    sa.Column("hours_to_lead", sa.Float),
    sa.Column("hours_to_scope", sa.Float),
    sa.Column("hours_to_monitoring", sa.Float),
    sa.Column("hours_to_close", sa.Float),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
)

escalation_updates = sa.Table(
    "escalation_updates",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("update_number", sa.Integer, primary_key=True),
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("author", Text, nullable=False),
    sa.Column("lead_engineer", Text),
)

escalation_stalls = sa.Table(
    "escalation_stalls",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("stall_number", sa.Integer, primary_key=True),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("ended_at", sa.String(40)),
    sa.Column("hours_stalled", sa.Float),
    sa.Column("reason", Text, nullable=False),
    sa.Column("noticed_by", Text, nullable=False),
)

escalation_specialist_teams = sa.Table(
    "escalation_specialist_teams",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("team", Text, nullable=False),
    sa.Column("reference", Text, nullable=False),
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("hours_since_stall", sa.Float),
)

escalation_tickets = sa.Table(
    "escalation_tickets",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("ticket", sa.String(200), primary_key=True),
    sa.Column("relation", sa.String(16), nullable=False),
)

escalation_uncertainties = sa.Table(
    "escalation_uncertainties",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("uncertainty_id", sa.String(16), primary_key=True),
    sa.Column("question", Text, nullable=False),
    sa.Column("raised_at", sa.String(40), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("settled_at", sa.String(40)),
    sa.Column("became_risk", sa.Boolean, nullable=False),
)

escalation_emergencies = sa.Table(
    "escalation_emergencies",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("emergency_id", sa.String(16), primary_key=True),
    sa.Column("ticket", Text, nullable=False),
    sa.Column("out_of_hours", sa.Boolean, nullable=False),
    sa.Column("handled_by", Text, nullable=False),
    sa.Column("raised_at", sa.String(40), nullable=False),
    sa.Column("reviewed", sa.Boolean, nullable=False),
    sa.Column("reviewed_at", sa.String(40)),
)

reporting_state = sa.Table(
    "reporting_state",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("facts", Text, nullable=False),
)

# Read models are rebuilt from history rather than migrated in place: a schema change bumps this
# version, and a read model written by an older version asks for `escalations rebuild reporting`.
SCHEMA_VERSION = 2
schema_versions = sa.Table(
    "read_model_schema",
    metadata,
    sa.Column("read_model", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)


class ReadModelOutdatedError(RuntimeError):
    """The stored read model was built by another schema version."""


READ_MODEL_TABLES = (
    escalations,
    escalation_updates,
    escalation_stalls,
    escalation_specialist_teams,
    escalation_tickets,
    escalation_uncertainties,
    escalation_emergencies,
)

VIEWS = {
    "active_escalations": """
        SELECT escalation_id, customer, region, severity, status, lead_engineer, dri_manager, channel,
               opened_at, last_update_at, exit_criteria_met, exit_criteria_total, stalled
        FROM escalations WHERE status <> 'closed'""",
    "lead_workload": """
        SELECT lead_engineer, region, COUNT(*) AS active_escalations
        FROM escalations WHERE status <> 'closed' AND lead_engineer IS NOT NULL
        GROUP BY lead_engineer, region""",
    "tickets_claimed_twice": """
        SELECT t.ticket, COUNT(*) AS escalations
        FROM escalation_tickets t WHERE t.relation = 'related'
        GROUP BY t.ticket HAVING COUNT(*) > 1""",
}


def create_schema(engine: sa.Engine) -> None:
    """Create what is missing (idempotent): tables, then views; refuse a read model of another version."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        stored = conn.execute(
            sa.select(schema_versions.c.version).where(schema_versions.c.read_model == "reporting")
        ).scalar()
        if stored is None:
            conn.execute(schema_versions.insert().values(read_model="reporting", version=SCHEMA_VERSION))
        elif stored != SCHEMA_VERSION:
            msg = (
                f"the reporting read model was built with schema version {stored}, and this version of "
                f"the code needs {SCHEMA_VERSION}; run `escalations rebuild reporting` to rebuild it from history"
            )
            raise ReadModelOutdatedError(msg)
        for name, query in VIEWS.items():
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE VIEW {name} AS {query}"))


def drop_schema(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for name in VIEWS:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
    metadata.drop_all(engine)


def load_facts(conn: sa.Connection, escalation_id: str) -> EscalationFacts | None:
    found = conn.execute(
        sa.select(reporting_state.c.facts).where(reporting_state.c.escalation_id == escalation_id)
    ).scalar()
    return facts_from_json(found) if found is not None else None


def load_many_facts(conn: sa.Connection, escalation_ids: list[str]) -> dict[str, EscalationFacts]:
    found: dict[str, EscalationFacts] = {}
    for chunk in range(0, len(escalation_ids), 500):
        query = sa.select(reporting_state).where(
            reporting_state.c.escalation_id.in_(escalation_ids[chunk : chunk + 500])
        )
        found |= {row.escalation_id: facts_from_json(row.facts) for row in conn.execute(query)}
    return found


def write_facts(conn: sa.Connection, facts: EscalationFacts, touched: frozenset[str]) -> None:
    """Replace this escalation's rows in the tables the applied events touched."""
    write_many(conn, [(facts, touched)])


def write_many(conn: sa.Connection, changed: list[tuple[EscalationFacts, frozenset[str]]]) -> None:
    """Replace the rows of many escalations at once: per table one delete and one batched insert."""
    replaced: dict[sa.Table, tuple[list[str], list[dict[str, object]]]] = {}

    def replace_rows(table: sa.Table, key: str, rows: list[dict[str, object]]) -> None:
        keys, all_rows = replaced.setdefault(table, ([], []))
        keys.append(key)
        all_rows.extend(rows)

    for facts, touched in changed:
        key = facts.escalation_id
        replace_rows(reporting_state, key, [{"escalation_id": key, "facts": facts_to_json(facts)}])
        replace_rows(escalations, key, [_escalation_row(facts)])
        for table, rows in _child_rows(facts).items():
            if table.name in touched:
                replace_rows(table, key, rows)
    for table, (keys, rows) in replaced.items():
        # One prepared delete run for many keys: cheaper to compile than a long IN list.
        conn.execute(table.delete().where(table.c.escalation_id == sa.bindparam("key")), [{"key": k} for k in keys])
        if rows:
            conn.execute(table.insert(), rows)


def _escalation_row(f: EscalationFacts) -> dict[str, object]:
    return {
        "escalation_id": f.escalation_id,
        "customer": f.customer,
        "region": f.region,
        "severity": f.severity,
        "source": f.source,
        "account_owner": f.account_owner,
        "dri_manager": f.dri_manager,
        "channel": f.channel,
        "status": f.status,
        "stalled": f.stalled,
        "lead_engineer": f.lead_engineer,
        "opened_at": f.opened_at,
        "lead_assigned_at": f.lead_assigned_at,
        "scope_defined_at": f.scope_defined_at,
        "monitoring_started_at": f.monitoring_started_at,
        "closed_at": f.closed_at,
        "outcome": f.outcome,
        "last_update_at": f.last_update_at,
        "updates_posted": len(f.updates),
        "exit_criteria_total": len(f.criteria),
        "exit_criteria_met": len(f.criteria_met),
        "stall_count": len(f.stalls),
        "hours_to_lead": f.hours_between(f.opened_at, f.lead_assigned_at),
        "hours_to_scope": f.hours_between(f.opened_at, f.scope_defined_at),
        "hours_to_monitoring": f.hours_between(f.opened_at, f.monitoring_started_at),
        "hours_to_close": f.hours_between(f.opened_at, f.closed_at),
        "version": f.version,
        "position": f.position,
    }


def _child_rows(f: EscalationFacts) -> dict[sa.Table, list[dict[str, object]]]:
    key = f.escalation_id
    return {
        escalation_updates: [
            {
                "escalation_id": key,
                "update_number": u.number,
                "occurred_at": u.occurred_at,
                "day": u.occurred_at[:10],
                "author": u.author,
                "lead_engineer": u.lead,
            }
            for u in f.updates
        ],
        escalation_stalls: [
            {
                "escalation_id": key,
                "stall_number": s.number,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "hours_stalled": f.hours_between(s.started_at, s.ended_at),
                "reason": s.reason,
                "noticed_by": s.noticed_by,
            }
            for s in f.stalls
        ],
        escalation_specialist_teams: [
            {
                "escalation_id": key,
                "number": s.number,
                "team": s.team,
                "reference": s.reference,
                "occurred_at": s.occurred_at,
                "hours_since_stall": s.hours_since_stall,
            }
            for s in f.specialist_escalations
        ],
        escalation_tickets: [
            {"escalation_id": key, "ticket": ticket, "relation": relation}
            for relation, tickets in (("related", f.related_tickets), ("unrelated", f.unrelated_tickets))
            for ticket in tickets
        ],
        escalation_uncertainties: [
            {
                "escalation_id": key,
                "uncertainty_id": u.uncertainty_id,
                "question": u.question,
                "raised_at": u.raised_at,
                "state": u.state,
                "settled_at": u.settled_at,
                "became_risk": u.state == RISK,
            }
            for u in f.uncertainties
        ],
        escalation_emergencies: [
            {
                "escalation_id": key,
                "emergency_id": x.emergency_id,
                "ticket": x.ticket,
                "out_of_hours": x.out_of_hours,
                "handled_by": x.handled_by,
                "raised_at": x.raised_at,
                "reviewed": x.reviewed_at is not None,
                "reviewed_at": x.reviewed_at,
            }
            for x in f.emergencies
        ],
    }
