"""The reporting read model's tables and views (SQLite and PostgreSQL from one definition).

Times are stored as ISO-8601 UTC text, so both dialects hold byte-identical rows and a rebuild can
be compared table by table. Analysts query these from any SQL client; `docs/read-models.md`
describes each column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from functools import lru_cache

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from domain.calendar import RegionCalendar
from domain.uncertainties import RISK
from projections.bulk import as_tuples, delete_rows, delete_where, insert_dicts, insert_tuples
from projections.compliance import windows
from projections.facts import EscalationFacts, RecordedEvent, at, facts_from_json, facts_to_json

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
    sa.Column("escalation_dri", Text, nullable=False),
    sa.Column("lead_region", sa.String(8)),
    sa.Column("lead_outside_region", sa.Boolean, nullable=False),
    sa.Column("lead_override_reason", Text),
    sa.Column("backup_engineer", Text),
    sa.Column("product_dri", Text),
    sa.Column("scope_versions", sa.Integer, nullable=False),
    sa.Column("scope_redefinitions", sa.Integer, nullable=False),
    sa.Column("monitoring_periods", sa.Integer, nullable=False),
    sa.Column("monitoring_interruptions", sa.Integer, nullable=False),
    sa.Column("corrections", sa.Integer, nullable=False),
    sa.Column("retrospective_completed_on", sa.String(10)),
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

escalation_monitoring_periods = sa.Table(
    "escalation_monitoring_periods",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("period_number", sa.Integer, primary_key=True),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("period_days", sa.Integer, nullable=False),
    sa.Column("ended_at", sa.String(40)),
    sa.Column("ended_by", sa.String(16)),
)

escalation_helpers = sa.Table(
    "escalation_helpers",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("engineer", Text, nullable=False),
    sa.Column("engineer_region", sa.String(8), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("added_at", sa.String(40), nullable=False),
    sa.Column("removed_at", sa.String(40)),
)

escalation_risks = sa.Table(
    "escalation_risks",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("risk_id", sa.String(16), primary_key=True),
    sa.Column("description", Text, nullable=False),
    sa.Column("likelihood", sa.String(16), nullable=False),
    sa.Column("impact", sa.String(16), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(16)),
    sa.Column("settled_at", sa.String(40)),
)

escalation_follow_up_actions = sa.Table(
    "escalation_follow_up_actions",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("action_id", sa.String(16), primary_key=True),
    sa.Column("what", Text, nullable=False),
    sa.Column("owner", Text, nullable=False),
    sa.Column("due_on", sa.String(10), nullable=False),
    sa.Column("ticket", Text),
    sa.Column("added_at", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(16)),
    sa.Column("settled_at", sa.String(40)),
)

# One row per update window (see projections/compliance.py); the open one has is_open true.
escalation_compliance_windows = sa.Table(
    "escalation_compliance_windows",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("window_number", sa.Integer, primary_key=True),
    sa.Column("region", sa.String(8), nullable=False),
    sa.Column("lead_engineer", Text),
    sa.Column("cadence_days", sa.Integer, nullable=False),
    sa.Column("opened_at", sa.String(40), nullable=False),
    sa.Column("due_at", sa.String(40), nullable=False),
    sa.Column("met_at", sa.String(40)),
    sa.Column("missed", sa.Boolean, nullable=False),
    sa.Column("is_open", sa.Boolean, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("week", sa.String(10), nullable=False),
    sa.Column("gap_working_days", sa.Integer, nullable=False),
    sa.Column("gap_since", sa.String(40), nullable=False),
)

# The working days of each region, each with the UTC instant it starts: overdue-by counts in plain SQL.
region_working_days = sa.Table(
    "region_working_days",
    metadata,
    sa.Column("region", sa.String(8), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("starts_at", sa.String(40), nullable=False),
)

# Each escalation's events as applied, so a correction can refold its corrected history in the batch.
reporting_events = sa.Table(
    "reporting_events",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("data", Text, nullable=False),
)

reporting_state = sa.Table(
    "reporting_state",
    metadata,
    sa.Column("escalation_id", sa.String(36), primary_key=True),
    sa.Column("facts", Text, nullable=False),
)

# Read models are rebuilt from history rather than migrated in place: a schema change bumps this
# version, and a read model written by an older version asks for `escalations rebuild reporting`.
SCHEMA_VERSION = 4
schema_versions = sa.Table(
    "read_model_schema",
    metadata,
    sa.Column("read_model", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)


class ReadModelOutdatedError(RuntimeError):
    """The stored read model was built by another schema version."""


# One escalation's rows each, from its facts (`_child_rows`), rewritten only when an event touched them.
CHILD_TABLES = (
    escalation_updates,
    escalation_stalls,
    escalation_specialist_teams,
    escalation_tickets,
    escalation_uncertainties,
    escalation_emergencies,
    escalation_monitoring_periods,
    escalation_helpers,
    escalation_risks,
    escalation_follow_up_actions,
)

READ_MODEL_TABLES = (escalations, *CHILD_TABLES, escalation_compliance_windows, region_working_days)

# "Now" as the stored text form of an instant (UTC, seconds, "+00:00"): the only per-dialect piece.
NOW = {
    "sqlite": "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')",
    "postgresql": "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')",
}

# Hours from one stored instant to another (or, when that one is null, to now): HOURS_UNTIL(a, b) in a view.
HOURS = {
    "sqlite": "((julianday({until}) - julianday({since})) * 24.0)",
    "postgresql": "(EXTRACT(EPOCH FROM (CAST({until} AS TIMESTAMPTZ) - CAST({since} AS TIMESTAMPTZ))) / 3600.0)",
}
# The specialist teams an escalation went to, in order, as one text: `{teams}` in a view.
TEAMS = {
    "sqlite": """(SELECT group_concat(o.team, ', ') FROM (
        SELECT t.team FROM escalation_specialist_teams t
        WHERE t.escalation_id = e.escalation_id ORDER BY t.number) o)""",
    "postgresql": """(SELECT string_agg(t.team, ', ' ORDER BY t.number) FROM escalation_specialist_teams t
        WHERE t.escalation_id = e.escalation_id)""",
}
# Per milestone: each escalation's hours ranked within its severity, region and quarter, for the medians
# and 90th percentiles in `durations` (ROW_NUMBER and COUNT windows, which both dialects have).
MILESTONES = ("hours_to_lead", "hours_to_scope", "hours_to_monitoring", "hours_to_close")
_MILESTONE_ROWS = "\n        UNION ALL ".join(
    f"SELECT severity, region, quarter, '{m}' AS milestone, {m} AS hours FROM quartered WHERE {m} IS NOT NULL"  # noqa: S608
    for m in MILESTONES
)
# The median averages the middle one or two; the 90th percentile is the nearest rank, ceil(0.9 n).
_MILESTONE_COLUMNS = ",\n               ".join(
    f"ROUND2(AVG(CASE WHEN milestone = '{m}' AND rn IN ((n + 1) / 2, (n + 2) / 2) THEN hours END)) AS {m}_median, "
    f"ROUND2(MAX(CASE WHEN milestone = '{m}' AND rn = (9 * n + 9) / 10 THEN hours END)) AS {m}_p90"
    for m in MILESTONES
)

# One view per report, named after it; `{now}` is filled in per dialect. Booleans are compared with
# TRUE/FALSE and counted through CASE, shares are integer arithmetic cast to DOUBLE PRECISION at the
# end, so SQLite and PostgreSQL return the same rows.
VIEWS = {
    "compliance_windows_now": """
        SELECT w.escalation_id, w.window_number, w.region, w.lead_engineer, w.cadence_days, w.opened_at,
               w.due_at, w.met_at, w.day, w.month, w.week,
               CASE WHEN w.is_open = TRUE THEN (
                   SELECT COUNT(*) FROM region_working_days c
                   WHERE c.region = w.region AND c.starts_at > w.gap_since AND c.starts_at <= {now})
               ELSE w.gap_working_days END AS gap_working_days,
               CASE WHEN w.is_open = FALSE OR w.due_at <= {now} THEN 1 ELSE 0 END AS due,
               CASE WHEN w.met_at IS NOT NULL THEN 1 ELSE 0 END AS met,
               CASE WHEN w.is_open = TRUE AND w.due_at <= {now} THEN 1 ELSE 0 END AS overdue_now
        FROM escalation_compliance_windows w""",
    "active": """
        SELECT e.escalation_id, e.customer, e.region, e.severity, e.status, e.lead_engineer, e.dri_manager,
               e.escalation_dri, e.backup_engineer, e.product_dri, e.channel, e.opened_at, e.last_update_at,
               e.updates_posted, e.exit_criteria_met, e.exit_criteria_total, e.stalled,
               w.due_at AS next_update_due,
               CASE WHEN w.due_at <= {now} THEN (
                   SELECT COUNT(*) FROM region_working_days c
                   WHERE c.region = e.region AND c.starts_at >= w.due_at AND c.starts_at <= {now})
               ELSE 0 END AS overdue_by_working_days
        FROM escalations e
        LEFT JOIN escalation_compliance_windows w ON w.escalation_id = e.escalation_id AND w.is_open = TRUE
        WHERE e.status <> 'closed'""",
    "active_escalations": """
        SELECT * FROM active""",
    "compliance": """
        SELECT lead_engineer, region, month, week, SUM(due) AS due_windows, SUM(met) AS met_windows,
               CAST((SUM(met) * 2000 + SUM(due)) / NULLIF(2 * SUM(due), 0) AS DOUBLE PRECISION) / 1000 AS share_met,
               MAX(gap_working_days) AS longest_gap_working_days, SUM(overdue_now) AS overdue_now
        FROM compliance_windows_now GROUP BY lead_engineer, region, month, week""",
    "compliance_by_month": """
        SELECT lead_engineer, region, month, SUM(due) AS due_windows, SUM(met) AS met_windows,
               CAST((SUM(met) * 2000 + SUM(due)) / NULLIF(2 * SUM(due), 0) AS DOUBLE PRECISION) / 1000 AS share_met,
               MAX(gap_working_days) AS longest_gap_working_days, SUM(overdue_now) AS overdue_now
        FROM compliance_windows_now GROUP BY lead_engineer, region, month""",
    "compliance_by_week": """
        SELECT lead_engineer, region, week, SUM(due) AS due_windows, SUM(met) AS met_windows,
               CAST((SUM(met) * 2000 + SUM(due)) / NULLIF(2 * SUM(due), 0) AS DOUBLE PRECISION) / 1000 AS share_met,
               MAX(gap_working_days) AS longest_gap_working_days, SUM(overdue_now) AS overdue_now
        FROM compliance_windows_now GROUP BY lead_engineer, region, week""",
    "compliance_by_escalation": """
        SELECT escalation_id, region, SUM(due) AS due_windows, SUM(met) AS met_windows,
               CAST((SUM(met) * 2000 + SUM(due)) / NULLIF(2 * SUM(due), 0) AS DOUBLE PRECISION) / 1000 AS share_met,
               MAX(gap_working_days) AS longest_gap_working_days, SUM(overdue_now) AS overdue_now
        FROM compliance_windows_now GROUP BY escalation_id, region""",
    "compliance_by_region": """
        SELECT region, SUM(due) AS due_windows, SUM(met) AS met_windows,
               CAST((SUM(met) * 2000 + SUM(due)) / NULLIF(2 * SUM(due), 0) AS DOUBLE PRECISION) / 1000 AS share_met,
               MAX(gap_working_days) AS longest_gap_working_days, SUM(overdue_now) AS overdue_now
        FROM compliance_windows_now GROUP BY region""",
    "workload": """
        SELECT lead_engineer, region, COUNT(*) AS active_escalations
        FROM escalations WHERE status <> 'closed' AND lead_engineer IS NOT NULL
        GROUP BY lead_engineer, region""",
    "lead_workload": """
        SELECT lead_engineer, region, active_escalations FROM workload""",
    "tickets_claimed_twice": """
        SELECT t.ticket, COUNT(*) AS escalations
        FROM escalation_tickets t JOIN escalations e ON e.escalation_id = t.escalation_id
        WHERE t.relation = 'related' AND e.status <> 'closed'
        GROUP BY t.ticket HAVING COUNT(*) > 1""",
    "scope_tickets": """
        SELECT t.escalation_id, e.customer, e.status, t.ticket, t.relation,
               CASE WHEN t.relation = 'related' AND e.status <> 'closed' AND EXISTS (
                   SELECT 1 FROM escalation_tickets o JOIN escalations oe ON oe.escalation_id = o.escalation_id
                   WHERE o.ticket = t.ticket AND o.relation = 'related' AND o.escalation_id <> t.escalation_id
                     AND oe.status <> 'closed') THEN 1 ELSE 0 END AS claimed_by_another_open_escalation
        FROM escalation_tickets t JOIN escalations e ON e.escalation_id = t.escalation_id""",
    "monitoring": """
        SELECT p.escalation_id, e.customer, p.period_number, p.started_at, p.period_days, p.ended_at, p.ended_by
        FROM escalation_monitoring_periods p JOIN escalations e ON e.escalation_id = p.escalation_id""",
    "risks": """
        SELECT r.escalation_id, e.customer, r.risk_id, r.description, r.likelihood, r.impact, r.recorded_at,
               r.outcome, r.settled_at
        FROM escalation_risks r JOIN escalations e ON e.escalation_id = r.escalation_id""",
    "helpers": """
        SELECT h.escalation_id, e.customer, e.region, h.engineer, h.engineer_region, h.kind, h.added_at, h.removed_at,
               CASE WHEN h.engineer_region <> e.region THEN 1 ELSE 0 END AS cross_region
        FROM escalation_helpers h JOIN escalations e ON e.escalation_id = h.escalation_id""",
    "escalation_facts": """
        SELECT escalation_id, customer, region, severity, status, lead_engineer, lead_region, lead_outside_region,
               lead_override_reason, backup_engineer, product_dri, escalation_dri, dri_manager,
               scope_versions, scope_redefinitions, monitoring_periods, monitoring_interruptions,
               updates_posted, corrections, retrospective_completed_on
        FROM escalations""",
    "emergencies": """
        SELECT x.escalation_id, e.customer, COUNT(*) AS emergencies,
               SUM(CASE WHEN x.out_of_hours = TRUE THEN 1 ELSE 0 END) AS out_of_hours,
               SUM(CASE WHEN x.out_of_hours = FALSE THEN 1 ELSE 0 END) AS in_hours,
               SUM(CASE WHEN x.reviewed = TRUE THEN 1 ELSE 0 END) AS reviewed,
               SUM(CASE WHEN x.out_of_hours = TRUE AND x.reviewed = FALSE THEN 1 ELSE 0 END) AS unreviewed
        FROM escalation_emergencies x JOIN escalations e ON e.escalation_id = x.escalation_id
        GROUP BY x.escalation_id, e.customer""",
    "durations_ranked": f"""
        WITH quartered AS (
            SELECT severity, region, hours_to_lead, hours_to_scope, hours_to_monitoring, hours_to_close,
                   SUBSTR(opened_at, 1, 4) || '-Q' || CAST((CAST(SUBSTR(opened_at, 6, 2) AS INTEGER) + 2) / 3 AS TEXT)
                       AS quarter
            FROM escalations),
        milestones AS (
            {_MILESTONE_ROWS})
        SELECT severity, region, quarter, milestone, hours,
               ROW_NUMBER() OVER (PARTITION BY severity, region, quarter, milestone ORDER BY hours) AS rn,
               COUNT(*) OVER (PARTITION BY severity, region, quarter, milestone) AS n
        FROM milestones""",  # noqa: S608 - the milestones are our column names
    "durations": f"""
        SELECT severity, region, quarter,
               {_MILESTONE_COLUMNS}
        FROM durations_ranked GROUP BY severity, region, quarter""",  # noqa: S608 - our column names
    "stalls": """
        SELECT e.escalation_id, e.customer,
               (SELECT COUNT(*) FROM escalation_stalls s WHERE s.escalation_id = e.escalation_id) AS stalls,
               COALESCE((SELECT ROUND2(SUM(HOURS_UNTIL(s.started_at, s.ended_at))) FROM escalation_stalls s
                         WHERE s.escalation_id = e.escalation_id), 0.0) AS hours_stalled,
               COALESCE({teams}, '') AS specialist_teams,
               (SELECT ROUND2(MIN(t.hours_since_stall)) FROM escalation_specialist_teams t
                WHERE t.escalation_id = e.escalation_id) AS hours_from_stall_to_escalation
        FROM escalations e
        WHERE EXISTS (SELECT 1 FROM escalation_stalls s WHERE s.escalation_id = e.escalation_id)
           OR EXISTS (SELECT 1 FROM escalation_specialist_teams t WHERE t.escalation_id = e.escalation_id)""",
    "uncertainty": """
        SELECT u.escalation_id, e.customer, u.uncertainty_id, u.question, u.state, u.raised_at, u.settled_at,
               ROUND1(HOURS_UNTIL(u.raised_at, u.settled_at)) AS hours_unknown,
               CASE WHEN u.became_risk = TRUE THEN 1 ELSE 0 END AS became_risk
        FROM escalation_uncertainties u JOIN escalations e ON e.escalation_id = u.escalation_id""",
    "follow_up_actions": """
        SELECT a.escalation_id, e.customer, a.action_id, a.what, a.owner, a.due_on, a.ticket, a.outcome,
               a.settled_at,
               CASE WHEN a.outcome IS NULL AND a.due_on < SUBSTR({now}, 1, 10) THEN 1 ELSE 0 END AS overdue
        FROM escalation_follow_up_actions a JOIN escalations e ON e.escalation_id = a.escalation_id""",
}


def view_sql(name: str, dialect: str) -> str:
    """The view's SQL for this dialect: "now", hours between instants, the teams, and rounding filled in."""
    chosen = dialect if dialect in NOW else "sqlite"
    sql = re.sub(
        r"HOURS_UNTIL\(([\w.]+), ([\w.]+)\)",
        lambda m: HOURS[chosen].format(since=m[1], until=f"COALESCE({m[2]}, {{now}})"),
        VIEWS[name],
    )
    return _expand_rounding(sql).format(now=NOW[chosen], teams=TEAMS[chosen])


def _expand_rounding(sql: str) -> str:
    """ROUNDn(x) -> CAST(ROUND(CAST(x AS NUMERIC), n) AS DOUBLE PRECISION): PostgreSQL rounds NUMERIC to
    digits, not DOUBLE PRECISION; both dialects then return the same floats."""
    while found := re.search(r"ROUND([12])\(", sql):
        start, digits, depth, end = found.start(), found[1], 0, found.end() - 1
        for end in range(found.end() - 1, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        inner = sql[found.end() : end]
        sql = f"{sql[:start]}CAST(ROUND(CAST({inner} AS NUMERIC), {digits}) AS DOUBLE PRECISION){sql[end + 1 :]}"
    return sql


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
        for name in reversed(VIEWS):  # dependents first
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
        for name in VIEWS:
            conn.execute(sa.text(f"CREATE VIEW {name} AS {view_sql(name, engine.dialect.name)}"))


def drop_schema(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for name in reversed(VIEWS):
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
    metadata.drop_all(engine)


def store_events(conn: sa.Connection, events: list[RecordedEvent]) -> None:
    insert_dicts(
        conn,
        reporting_events,
        [
            {
                "escalation_id": e.escalation_id,
                "version": e.version,
                "name": e.name,
                "position": e.position,
                "event_id": e.event_id,
                "data": orjson.dumps(e.data).decode(),
            }
            for e in events
        ],
    )


def load_events(conn: sa.Connection, escalation_ids: list[str]) -> dict[str, list[RecordedEvent]]:
    found: dict[str, list[RecordedEvent]] = {key: [] for key in escalation_ids}
    t = reporting_events
    query = sa.select(t).where(t.c.escalation_id.in_(escalation_ids)).order_by(t.c.escalation_id, t.c.version)
    for r in conn.execute(query):
        found[r.escalation_id].append(
            RecordedEvent(r.name, r.escalation_id, r.version, r.position, orjson.loads(r.data), r.event_id)
        )
    return found


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


Calendars = dict[str, RegionCalendar]
UTC_CALENDARS: Calendars = {region: RegionCalendar(region) for region in ("AMER", "EMEA", "APAC")}
CALENDAR_AHEAD = timedelta(days=366)


def calendar_of(calendars: Calendars, region: str) -> RegionCalendar:
    return calendars.get(region) or RegionCalendar(region)


def write_facts(
    conn: sa.Connection, facts: EscalationFacts, touched: frozenset[str], calendars: Calendars = UTC_CALENDARS
) -> None:
    """Replace this escalation's rows in the tables the applied events touched."""
    write_many(conn, [(facts, touched)], calendars)


Row = tuple[object, ...]
UNKNOWN = object()  # what was written before is not known: replace every touched table's rows


def write_many(
    conn: sa.Connection,
    changed: list[tuple[EscalationFacts, frozenset[str]]],
    calendars: Calendars = UTC_CALENDARS,
    before: Mapping[str, EscalationFacts | None] | None = None,
) -> None:
    """Write the rows of many escalations at once: per table at most one delete run and one batched insert.

    `before` holds the stored facts each escalation's rows were written from (None: it has no rows
    yet); then only what differs is written: a new escalation's rows are inserted without deletes, a
    child table's changed rows alone are replaced, and the compliance windows are left alone when
    nothing they follow from (updates, marks) changed. Without it, every touched table is replaced.
    """
    plan = _WritePlan()
    for facts, touched in changed:
        key = facts.escalation_id
        old = before.get(key, UNKNOWN) if before is not None else UNKNOWN
        plan.replace(reporting_state, key, old, [(key, facts_to_json(facts))])
        plan.replace(escalations, key, old, as_tuples(escalations, [_escalation_row(facts)]))
        # Any event can move the update duty (an update, a phase, a lead, a severity).
        if not isinstance(old, EscalationFacts) or _duty_moved(old, facts):
            calendar = calendar_of(calendars, facts.region)
            plan.replace(
                escalation_compliance_windows,
                key,
                old,
                as_tuples(escalation_compliance_windows, _window_rows(facts, calendar)),
            )
        children = [table for table in CHILD_TABLES if table.name in touched]
        if not children:
            continue
        rows, old_rows = _child_rows(facts), _child_rows(old) if isinstance(old, EscalationFacts) else {}
        for table in children:
            new_rows = as_tuples(table, rows[table])
            if isinstance(old, EscalationFacts):
                plan.differ(table, as_tuples(table, old_rows[table]), new_rows)
            else:
                plan.replace(table, key, old, new_rows)
    _extend_calendar(conn, calendars, [f for f, _ in changed if f.opened_at])
    plan.run(conn)


def _duty_moved(old: EscalationFacts, new: EscalationFacts) -> bool:
    return old.marks != new.marks or old.updates != new.updates or old.region != new.region


class _WritePlan:
    """The deletes and inserts of one batch, per table, run as one executemany each."""

    def __init__(self) -> None:
        self.whole: dict[sa.Table, list[str]] = {}  # escalations whose rows in the table are all replaced
        self.single: dict[sa.Table, list[Row]] = {}  # rows deleted by their primary key
        self.inserts: dict[sa.Table, list[Row]] = {}

    def replace(self, table: sa.Table, key: str, old: object, rows: list[Row]) -> None:
        if old is not None:  # a new escalation has no rows to delete
            self.whole.setdefault(table, []).append(key)
        self.inserts.setdefault(table, []).extend(rows)

    def differ(self, table: sa.Table, old: list[Row], new: list[Row]) -> None:
        """Only the rows that changed: a changed row is deleted by its primary key and inserted anew."""
        kept, fresh = set(new), set(old)
        positions = _primary_key_positions(table)
        gone = [tuple(row[i] for i in positions) for row in old if row not in kept]
        if gone:
            self.single.setdefault(table, []).extend(gone)
        added = [row for row in new if row not in fresh]
        if added:
            self.inserts.setdefault(table, []).extend(added)

    def run(self, conn: sa.Connection) -> None:
        for table, keys in self.whole.items():
            # One prepared delete run for many keys: cheaper to compile than a long IN list.
            delete_where(conn, table, "escalation_id", keys)
        for table, rows in self.single.items():
            delete_rows(conn, table, rows)
        for table, rows in self.inserts.items():
            insert_tuples(conn, table, rows)


@lru_cache(maxsize=32)
def _primary_key_positions(table: sa.Table) -> tuple[int, ...]:
    names = [c.name for c in table.columns]
    return tuple(names.index(c.name) for c in table.primary_key.columns)


def _window_rows(f: EscalationFacts, calendar: RegionCalendar) -> list[dict[str, object]]:
    found = windows(f, calendar)
    last = len(found)
    return [
        {
            "escalation_id": f.escalation_id,
            "window_number": w.number,
            "region": f.region,
            "lead_engineer": w.lead_engineer,
            "cadence_days": w.cadence_days,
            "opened_at": w.opened_at,
            "due_at": w.due_at,
            "met_at": w.met_at,
            "missed": w.missed,
            "is_open": w.number == last and w.met_at is None and not w.missed,
            "day": w.day,
            "month": w.day[:7],
            "week": _week_start(w.day),
            "gap_working_days": w.gap_working_days,
            "gap_since": w.gap_since,
        }
        for w in found
    ]


def _week_start(day: str) -> str:
    local = date.fromisoformat(day)
    return (local - timedelta(days=local.weekday())).isoformat()


def _extend_calendar(conn: sa.Connection, calendars: Calendars, changed: list[EscalationFacts]) -> None:
    """Keep each region's working days from its earliest escalation to a year past the newest event."""
    if not changed:
        return
    first = min(at(f.opened_at).date() for f in changed) - timedelta(days=7)
    last = max(at(f.opened_at).date() for f in changed) + CALENDAR_AHEAD
    t = region_working_days
    held = {
        r.region: (date.fromisoformat(r.first), date.fromisoformat(r.last))
        for r in conn.execute(
            sa.select(t.c.region, sa.func.min(t.c.day).label("first"), sa.func.max(t.c.day).label("last")).group_by(
                t.c.region
            )
        )
    }
    rows: list[dict[str, object]] = []
    for region, calendar in calendars.items():
        have = held.get(region)
        wanted = (
            [(first, last)]
            if have is None
            else [(first, have[0] - timedelta(days=1)), (have[1] + timedelta(days=1), last)]
        )
        for start, end in wanted:
            if start <= end:
                rows += [
                    {"region": region, "day": d.isoformat(), "starts_at": _utc_text(calendar, d)}
                    for d in calendar.working_days(start, end)
                ]
    if rows:
        # Consumers in one group may extend it at once: a day another already added is skipped.
        conn.execute(_insert_new(conn, t), rows)


def _insert_new(conn: sa.Connection, table: sa.Table) -> sa.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return table.insert()


def _utc_text(calendar: RegionCalendar, day: date) -> str:
    return calendar.start_of(day).isoformat()


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
        "escalation_dri": f.escalation_dri,
        "lead_region": f.lead_region,
        "lead_outside_region": bool(f.lead_region) and f.lead_region != f.region,
        "lead_override_reason": f.lead_override_reason,
        "backup_engineer": f.backup_engineer,
        "product_dri": f.product_dri,
        "scope_versions": f.scope_versions,
        "scope_redefinitions": max(0, f.scope_versions - 1),
        "monitoring_periods": len(f.monitoring_periods),
        "monitoring_interruptions": sum(p.ended_by == "interrupted" for p in f.monitoring_periods),
        "corrections": f.corrections,
        "retrospective_completed_on": f.retrospective_completed_on,
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
        escalation_monitoring_periods: [
            {
                "escalation_id": key,
                "period_number": p.number,
                "started_at": p.started_at,
                "period_days": p.period_days,
                "ended_at": p.ended_at,
                "ended_by": p.ended_by,
            }
            for p in f.monitoring_periods
        ],
        escalation_helpers: [
            {
                "escalation_id": key,
                "number": n,
                "engineer": h.engineer,
                "engineer_region": h.engineer_region,
                "kind": h.kind,
                "added_at": h.added_at,
                "removed_at": h.removed_at,
            }
            for n, h in enumerate(f.helpers, start=1)
        ],
        escalation_risks: [
            {
                "escalation_id": key,
                "risk_id": r.risk_id,
                "description": r.description,
                "likelihood": r.likelihood,
                "impact": r.impact,
                "recorded_at": r.recorded_at,
                "outcome": r.outcome,
                "settled_at": r.settled_at,
            }
            for r in f.risks
        ],
        escalation_follow_up_actions: [
            {
                "escalation_id": key,
                "action_id": a.action_id,
                "what": a.what,
                "owner": a.owner,
                "due_on": a.due_on,
                "ticket": a.ticket,
                "added_at": a.added_at,
                "outcome": a.outcome,
                "settled_at": a.settled_at,
            }
            for a in f.follow_up_actions
        ],
    }
