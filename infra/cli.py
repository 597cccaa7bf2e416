"""The `escalations` command line."""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from domain.errors import EscalationError
from domain.escalation import Escalation
from domain.events import EscalationEvent, event_fields
from infra.bootstrap import build_relay, build_service
from infra.demo import run_demo
from infra.logs import configure_logging
from infra.relay import BrokerUnavailableError
from infra.relay_state import RelayLock, RelayLockedError
from infra.settings import Settings
from infra.topics import TopicMismatchError

app = typer.Typer(
    help="Escalation Ledger: run customer account escalations, event-sourced.", no_args_is_help=True
)
console = Console()

EXIT_DOMAIN_ERROR = 3
EXIT_UNAVAILABLE = 4  # a broker or database could not be reached
EXIT_CONFLICT = 5  # another relay holds the lock, or a topic exists with the wrong settings


@app.callback()
def main(
    log_level: str = typer.Option(
        "INFO", envvar="ESCALATIONS_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR."
    ),
    log_json: bool | None = typer.Option(
        None,
        "--log-json/--log-text",
        envvar="ESCALATIONS_LOG_JSON",
        help="JSON log lines (default off a TTY).",
    ),
) -> None:
    """Escalation Ledger command line. Settings come from ESCALATIONS_* environment variables."""
    configure_logging(log_level, json=log_json)


@app.command()
def relay(
    from_start: bool = typer.Option(False, "--from-start", help="Republish every event (for a new cluster)."),
    standby: bool = typer.Option(False, "--standby", help="Wait for the relay lock instead of failing."),
) -> None:
    """Publish recorded events from the event store to Kafka until stopped (SIGTERM or Ctrl+C)."""
    settings = Settings()
    if not settings.kafka_bootstrap_servers:
        console.print(
            "[red]error:[/red] ESCALATIONS_KAFKA_BOOTSTRAP_SERVERS is not set; the embedded broker runs only "
            "inside `escalations serve` and `escalations demo`. Set it to your cluster's servers."
        )
        raise typer.Exit(EXIT_UNAVAILABLE)
    service = build_service(settings)
    with RelayLock(settings.event_store_url) as lock:
        while standby and not lock.try_acquire():
            time.sleep(1)
        publisher = build_relay(settings, service)
        if from_start:
            publisher.republish_everything()
        stop_on_signals(publisher.stop)
        publisher.run()


def stop_on_signals(stop: Callable[[], None]) -> None:
    """First SIGTERM/SIGINT: finish the current round and stop. A second Ctrl+C: stop at once."""

    def handle(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


@app.command()
def demo(
    data_dir: Path | None = typer.Option(None, help="Keep the demo's stores here (default: a temp dir)."),
) -> None:
    """Walk the handbook's LDAP-proxy escalation and two others through the system and print them."""
    with tempfile.TemporaryDirectory(prefix="escalations-demo-") as tmp:
        result = run_demo(Settings(data_dir=data_dir or Path(tmp)))
        print_history(result.service.history(result.story))
        for escalation_id in (result.story, *result.others):
            print_escalation(result.service.escalation(escalation_id))
        console.print(
            f"Published {result.published} events to topic {result.topic} "
            f"on the embedded Kafka-compatible broker at {result.bootstrap_servers}."
        )


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
    """Entry point that turns known failures into a clear message and a meaningful exit code."""
    try:
        app()
    except EscalationError as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_DOMAIN_ERROR)
    except BrokerUnavailableError as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_UNAVAILABLE)
    except (RelayLockedError, TopicMismatchError) as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_CONFLICT)
