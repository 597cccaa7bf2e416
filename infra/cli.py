"""The `escalations` command line."""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from domain.errors import EscalationError
from domain.escalation import Escalation
from domain.events import EscalationEvent, event_fields
from infra.bootstrap import build_service
from infra.settings import Settings
from infra.stories import ldap_proxy_story, quiet_escalation

app = typer.Typer(
    help="Escalation Ledger: run customer account escalations, event-sourced.", no_args_is_help=True
)
console = Console()

EXIT_DOMAIN_ERROR = 3


@app.callback()
def main() -> None:
    """Escalation Ledger command line. Settings come from ESCALATIONS_* environment variables."""


@app.command()
def demo(
    data_dir: Path | None = typer.Option(None, help="Keep the demo's stores here (default: a temp dir)."),
) -> None:
    """Walk the handbook's LDAP-proxy escalation and two others through the system and print them."""
    with tempfile.TemporaryDirectory(prefix="escalations-demo-") as tmp:
        settings = Settings(data_dir=data_dir or Path(tmp))
        service = build_service(settings)
        start = (datetime.now(UTC) - timedelta(days=14)).replace(hour=8, minute=0, second=0, microsecond=0)
        story = ldap_proxy_story(service, start)
        others = [
            quiet_escalation(
                service, start + timedelta(days=10), customer="Initech", region="AMER", lead="ana.lead"
            ),
            quiet_escalation(
                service, start + timedelta(days=11), customer="Umbrella", region="APAC", lead="kenji.lead"
            ),
        ]
        print_history(service.history(story))
        for escalation_id in (story, *others):
            print_escalation(service.escalation(escalation_id))


def print_history(events: list[EscalationEvent]) -> None:
    table = Table(title="What happened, in order (the event store)")
    for column in ("v", "occurred (UTC)", "actor", "event"):
        table.add_column(column)
    for event in events:
        fields = event_fields(event)
        table.add_row(
            str(event.originator_version),
            fields["occurred_at"].strftime("%a %d %b %H:%M"),
            fields["actor"],
            type(event).__name__,
        )
    console.print(table)


def print_escalation(escalation: Escalation) -> None:
    table = Table(title=f"Escalation {escalation.id}", show_header=False)
    rows = {
        "customer": f"{escalation.customer} ({escalation.region})",
        "channel": escalation.channel,
        "severity": f"{escalation.severity} (updates: {escalation.cadence.description})",
        "phase": str(escalation.phase) + (" (stalled)" if escalation.is_stalled else ""),
        "lead engineer": escalation.lead_engineer or "-",
        "exit criteria met": f"{len(escalation.criteria_met)} of {len(escalation.exit_criteria)}",
        "updates posted": str(escalation.updates_posted),
        "uncertainties": ", ".join(f"{k}: {v['state']}" for k, v in escalation.uncertainties.items()) or "-",
        "specialist teams": ", ".join(escalation.specialist_teams) or "-",
        "outcome": escalation.outcome or "-",
        "retrospective": escalation.retrospective or "-",
        "version": str(escalation.version),
    }
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)


def run() -> None:
    """Entry point that turns domain errors into a clear message and a meaningful exit code."""
    try:
        app()
    except EscalationError as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_DOMAIN_ERROR)
