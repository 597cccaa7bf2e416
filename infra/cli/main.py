"""The `escalations` command line."""

from __future__ import annotations

import csv
import json
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
import typer
from prometheus_client import start_http_server
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID, TextColumn
from rich.table import Table

from consumers.notifier import GROUP as NOTIFIER_GROUP
from consumers.rebuild import Progress as RebuildProgress
from consumers.reporting import GROUP as REPORTING_GROUP
from consumers.runtime import ConsumerRunner, StoredOffsets, lag_by_partition
from consumers.switch import StagingError
from consumers.timeline import GROUP as TIMELINE_GROUP
from consumers.watcher import GROUP as WATCHER_GROUP
from consumers.watcher import pending_summary
from domain.errors import EscalationError
from domain.events import EscalationEvent, event_fields
from infra.audit import (
    WATCHER_COMPARED,
    Compared,
    TimelinesMissingError,
    copy_subscriptions,
    history_as_recorded,
    notifier_compared,
    read_whole_topic,
    table_checksums,
    verify_timelines,
    verify_timelines_against_topic,
)
from infra.bootstrap import (
    build_delivery_loop,
    build_notifier_consumer,
    build_region_zones,
    build_relay,
    build_reporting_consumer,
    build_service,
    build_timeline_consumer,
    build_watcher,
    log_consumer,
    payload_cipher,
    prepare_topics,
    read_model_engine,
    rebuild_live,
    rebuild_notifier,
    rebuild_reporting,
    rebuild_timeline,
    rebuild_watcher,
    utc_now,
)
from infra.cli.serve import serve, serve_demo
from infra.http.app import ROUTES
from infra.local.demo import run_demo
from infra.logs import configure_logging
from infra.messaging.clients import KafkaLoginError
from infra.messaging.envelope import record_decoder
from infra.messaging.relay import BrokerUnavailableError
from infra.messaging.relay_state import Checkpoint, RelayLock, RelayLockedError
from infra.messaging.topics import TopicMismatchError
from infra.notify.delivery import dead_deliveries, delivery_counts, retry_dead
from infra.notify.subscriptions import (
    SubscriptionError,
    add_subscription,
    list_subscriptions,
    remove_subscription,
    set_paused,
)
from infra.notify.urls import OutboundUrlError
from infra.settings import Settings, describe_invalid
from projections.notification_tables import STATES as DELIVERY_STATES
from projections.notification_tables import create_notifier_schema
from projections.reports import REPORTS
from projections.retro import render_markdown, retrospective
from projections.tables import READ_MODEL_TABLES, ReadModelOutdatedError
from projections.timeline import timeline

app = typer.Typer(help="Escalation Ledger: run customer account escalations, event-sourced.", no_args_is_help=True)
# Reports are wide: off a terminal (pipes, CI logs) print them at full width rather than 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)

EXIT_USAGE = 2
EXIT_DOMAIN_ERROR = 3
EXIT_UNAVAILABLE = 4  # a broker or database could not be reached
EXIT_CONFLICT = 5  # another relay holds the lock, or a topic exists with the wrong settings
EXIT_AUDIT_FAILED = 6  # a stored read model differs from history
EXIT_NOT_BUILT = 7  # a read model the command reads has not been built yet


@app.callback()
def main(
    log_level: str = typer.Option("INFO", envvar="ESCALATIONS_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR."),
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
    publisher = build_relay(settings, build_service(settings))
    if from_start:
        publisher.republish_everything()
    stop_on_signals(publisher.stop)
    publisher.run(RelayLock(settings.event_store_url), standby=standby)


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", envvar="ESCALATIONS_HOST", help="Address to listen on."),
    port: int = typer.Option(8080, envvar="ESCALATIONS_PORT", help="Port to listen on."),
) -> None:
    """Run the HTTP API with the relay and the reporting consumer (embedded broker if none is configured)."""
    serve(Settings(), host, port, console.print)


READ_MODELS = ["reporting", "timeline", "watcher", "notifier"]
READ_MODELS_HELP = "The read model: reporting, timeline, watcher or notifier."
audit = typer.Typer(help="Replay and verify history: timelines, and the state as of a moment.", no_args_is_help=True)
app.add_typer(audit, name="audit")


def _check_read_model(name: str) -> None:
    if name not in READ_MODELS:
        console.print(f"[red]error:[/red] unknown read model {name!r}; known: {', '.join(READ_MODELS)}")
        raise typer.Exit(2)


@app.command()
def consume(
    name: str = typer.Argument(..., help=READ_MODELS_HELP),
    metrics_port: int | None = typer.Option(None, envvar="ESCALATIONS_METRICS_PORT", help="Serve Prometheus metrics."),
) -> None:
    """Run one consumer of a read model until stopped (start several to share the partitions)."""
    _check_read_model(name)
    settings = Settings()
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1")
    engine = read_model_engine(settings)
    prepare_topics(settings)  # a member that subscribes before the topic exists would be given nothing
    if name == "notifier":
        _consume_notifier(settings, engine)
        return
    if name == "watcher":
        _watch(settings, engine)
        return
    build = build_reporting_consumer if name == "reporting" else build_timeline_consumer
    runner = build(settings, engine)
    stop_on_signals(runner.stop)
    runner.run()


def _consume_notifier(settings: Settings, engine: sa.Engine) -> None:
    """The notifier consumer and its delivery loop: recording never waits for a receiver."""
    runner, loop = build_notifier_consumer(settings, engine), build_delivery_loop(settings, engine)
    sender = threading.Thread(target=loop.run, name="notifier-delivery", daemon=True)

    def stop() -> None:
        runner.stop()
        loop.stop()

    stop_on_signals(stop)
    sender.start()
    try:
        runner.run()
    finally:
        loop.stop()
        sender.join(timeout=2 * settings.notify_timeout_seconds)


@app.command()
def watch(
    metrics_port: int | None = typer.Option(None, envvar="ESCALATIONS_METRICS_PORT", help="Serve Prometheus metrics."),
) -> None:
    """Run the watcher alone: it notices overdue updates, stalls, ended monitoring and due retrospectives,
    and records each as the ledger's own event (start several to share the partitions)."""
    settings = Settings()
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1")
    _watch(settings, read_model_engine(settings))


def _watch(settings: Settings, engine: sa.Engine) -> None:
    watcher = build_watcher(settings, engine, build_service(settings))
    stop_on_signals(watcher.stop)
    watcher.run()


@app.command()
def rebuild(name: str = typer.Argument(..., help=READ_MODELS_HELP)) -> None:
    """Rebuild a read model from offset zero, with a progress bar, while the live one keeps answering.

    Reporting, timeline and watcher are rebuilt beside the live read model (a new SQLite file, or a
    new PostgreSQL schema) and switched in atomically; their running consumers continue from the
    rebuild's offsets. The notifier is rebuilt in place (stop it first): its delivery log and
    subscriptions are not history and are kept. Nothing goes out again: the watcher's deadlines that
    already fired are refused by the ledger, and the notifier's delivery log already holds every
    event's deliveries."""
    _check_read_model(name)
    settings = Settings()
    engine = read_model_engine(settings)
    with Progress(*Progress.get_default_columns(), TextColumn("{task.completed} events"), console=console) as bar:
        task = bar.add_task(f"rebuilding {name}", total=None)
        progress = _progress_of(bar, task)
        if name == "notifier":
            runner = rebuild_notifier(settings, engine, progress)
        else:
            service = build_service(settings) if name == "watcher" else None  # a rebuild fires nothing
            runner = rebuild_live(
                settings,
                engine,
                name,
                progress,
                service=service,
                switching=lambda: bar.update(task, description=f"switching {name} in"),
            )
    assert isinstance(runner, ConsumerRunner)
    console.print(f"Rebuilt {name}: {runner.stats.applied} events applied, {runner.stats.dead_lettered} dead-lettered.")


@app.command()
def report(
    name: str = typer.Argument(..., help=f"One of: {', '.join(REPORTS)}."),
    output: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """Print a report of the reporting read model."""
    if name not in REPORTS:
        console.print(f"[red]error:[/red] unknown report {name!r}; known: {', '.join(REPORTS)}")
        raise typer.Exit(2)
    if output not in ("table", "csv", "json"):
        console.print(f"[red]error:[/red] unknown format {output!r}; use table, csv or json")
        raise typer.Exit(2)
    with read_model_engine(Settings()).connect() as conn:
        rows = REPORTS[name](conn, utc_now())
    print_rows(name, rows, output)


@app.command()
def status() -> None:
    """Where each part stands: the relay's checkpoint, each read model's lag per partition (reporting,
    timeline, watcher, notifier), the watcher's deadlines and the notifier's deliveries (dead ones too)."""
    settings = Settings()
    service = build_service(settings)
    newest = service.recorder.max_notification_id() or 0
    checkpoint = Checkpoint(sa.create_engine(settings.event_store_url), relay=settings.events_topic).position()
    console.print(
        f"event store: newest position {newest}; relay checkpoint {checkpoint} ({newest - checkpoint} behind)"
    )
    engine = read_model_engine(settings)
    reader = log_consumer(settings, None)
    try:
        lags = {
            name: lag_by_partition(StoredOffsets(engine, settings.group_name(group)), reader, settings.events_topic)
            for name, group in (
                ("reporting", REPORTING_GROUP),
                ("timeline", TIMELINE_GROUP),
                ("watcher", WATCHER_GROUP),
                ("notifier", NOTIFIER_GROUP),
            )
        }
    finally:
        reader.close()
    rows = [
        {"read_model": name, "partition": p, "applied_up_to": s, "end_offset": e, "lag": lag}
        for name, each in lags.items()
        for p, (s, e, lag) in each.items()
    ]
    print_rows("Consumer lag", rows, "table")
    with engine.connect() as conn:
        print_rows("Watcher deadlines", pending_summary(conn, utc_now()), "table")
    create_notifier_schema(engine)
    counts = dict.fromkeys(DELIVERY_STATES, 0) | delivery_counts(engine)  # dead: 0 said, not left out
    print_rows("Notifier deliveries (escalations notify dead / retry)", [counts], "table")


@app.command()
def retro(
    escalation_id: UUID = typer.Argument(..., help="The escalation."),
    output: str = typer.Option("md", "--format", help="md or json."),
) -> None:
    """Print the escalation's retrospective, in the shape of a retro issue (from the event store)."""
    settings = Settings()
    events = history_as_recorded(build_service(settings), escalation_id)
    document = retrospective(events, utc_now(), timeline(events, build_region_zones(settings)))
    if output == "json":
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(render_markdown(document))


@audit.command("verify")
def audit_verify(escalation_id: UUID | None = typer.Argument(None, help="One escalation (default: all).")) -> None:
    """Recompute every timeline's hash chain from the event store (and the topic, with Kafka configured)
    and compare it with the stored one. Exit 6 when one differs, 7 when no timeline was ever built."""
    settings = Settings()
    engine = read_model_engine(settings)
    zones = build_region_zones(settings)
    try:
        problems = {"event store": verify_timelines(build_service(settings), engine, zones, escalation_id)}
    except TimelinesMissingError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(EXIT_NOT_BUILT) from None
    if settings.kafka_bootstrap_servers:
        reader = log_consumer(settings, None)
        try:
            events = read_whole_topic(reader, settings.events_topic, record_decoder(payload_cipher(settings)))
        finally:
            reader.close()
        if escalation_id is not None:
            events = [e for e in events if e.escalation_id == str(escalation_id)]
        found = verify_timelines_against_topic(engine, events, zones)
        problems["topic"] = {k: v for k, v in found.items() if escalation_id is None or k == str(escalation_id)}
    else:
        console.print("No ESCALATIONS_KAFKA_BOOTSTRAP_SERVERS: checked against the event store only.")
    for source, found in problems.items():
        for key, problem in found.items():
            console.print(f"[red]escalation {key}[/red] (against the {source}): {problem}")
    if any(problems.values()):
        raise typer.Exit(EXIT_AUDIT_FAILED)
    console.print(f"Every stored timeline matches the {' and the '.join(problems)}.")


@audit.command("rebuild")
def audit_rebuild() -> None:
    """Rebuild every read model (reporting, timeline, watcher, notifier) into a fresh database from offset
    zero and compare it with the live one, table by table (what history decides; see infra/audit.py).

    The watcher and the notifier are compared only where their tables exist (they may run elsewhere)."""
    settings = Settings()
    live = read_model_engine(settings)
    tables: list[str | Compared] = [*(t.name for t in READ_MODEL_TABLES), "reporting_state", "timeline_entries"]
    present = sa.inspect(live)
    with tempfile.TemporaryDirectory(prefix="escalations-audit-") as tmp:
        fresh_settings = settings.but(read_model_url=f"sqlite:///{Path(tmp) / 'fresh.db'}")
        fresh = read_model_engine(fresh_settings)
        steps: list[tuple[str, Callable[[RebuildProgress], object]]] = [
            ("reporting", lambda progress: rebuild_reporting(fresh_settings, fresh, progress)),
            ("timeline", lambda progress: rebuild_timeline(fresh_settings, fresh, progress)),
        ]
        if present.has_table("watcher_schedules"):
            service = build_service(settings)  # only builds the watcher: a rebuild fires nothing
            steps.append(("watcher", lambda progress: rebuild_watcher(fresh_settings, fresh, service, progress)))
            tables += WATCHER_COMPARED
        if present.has_table("notify_context"):
            tables += notifier_compared(copy_subscriptions(live, fresh))
            steps.append(("notifier", lambda progress: rebuild_notifier(fresh_settings, fresh, progress)))
        skipped = {"watcher", "notifier"} - {name for name, _ in steps}
        if skipped:
            console.print(f"Not compared (no tables in the live read-model database): {', '.join(sorted(skipped))}.")
        with Progress(*Progress.get_default_columns(), console=console) as bar:
            for name, rebuild_one in steps:
                rebuild_one(_progress_of(bar, bar.add_task(f"rebuilding {name}", total=None)))
        ours, theirs = table_checksums(live, tables), table_checksums(fresh, tables)
    rows = [
        {
            "table": name,
            "live_rows": ours[name][0],
            "rebuilt_rows": theirs[name][0],
            "live_sha256": ours[name][1][:16],
            "rebuilt_sha256": theirs[name][1][:16],
            "equal": ours[name] == theirs[name],
        }
        for name in ours
    ]
    print_rows("Live read models against a rebuild from offset zero", rows, "table")
    if not all(row["equal"] for row in rows):
        console.print("[red]The live read models differ from history[/red]; run `escalations rebuild NAME` for those.")
        raise typer.Exit(EXIT_AUDIT_FAILED)


@audit.command("as-of")
def audit_as_of(
    escalation_id: UUID = typer.Argument(..., help="The escalation."),
    moment: datetime | None = typer.Argument(
        None, help="Recorded time: what the ledger knew then (ISO with offset, e.g. 2026-11-03T12:00:00+00:00)."
    ),
    occurred: datetime | None = typer.Option(
        None, "--occurred", help="Occurred time: the escalation's state then, with the corrections known."
    ),
) -> None:
    """The escalation as the ledger knew it at a recorded time, as it was at an occurred time, or both.

    With only --occurred: the state at that time of what happened, as we know it now (corrections
    applied). With both: as the ledger knew it at the recorded time about that occurred time.
    """
    service = build_service(Settings())
    if occurred is not None:
        state = service.state_as_occurred(escalation_id, _utc(occurred), known_at=_utc(moment) if moment else None)
    elif moment is not None:
        state = service.state_as_of(escalation_id, _utc(moment))
    else:
        console.print("[red]error:[/red] give a recorded time (TIME), an occurred time (--occurred TIME), or both")
        raise typer.Exit(EXIT_USAGE)
    print_escalation(state)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def act(
    what: str = typer.Argument(..., help=f"The command, as its API path: {', '.join(r.path for r in ROUTES)}."),
    escalation_id: UUID = typer.Argument(..., help="The escalation."),
    body: str = typer.Option("{}", "--json", help="The command's facts as JSON, as the API's body for it."),
    actor: str = typer.Option(..., envvar="ESCALATIONS_ACTOR", help="Who does it (recorded as the actor)."),
    expected_version: int | None = typer.Option(None, "--if-version", help="Refuse unless still at this version."),
) -> None:
    """Record a command on an escalation from a script, e.g. `act severity ID --json '{"severity": "high", ...}'`."""
    route = {r.path: r for r in ROUTES}.get(what)
    if route is None:
        console.print(f"[red]error:[/red] unknown command {what!r}; use one of: {', '.join(r.path for r in ROUTES)}")
        raise typer.Exit(EXIT_USAGE)
    try:
        command = route.body.model_validate_json(body).command(route.command, escalation_id=escalation_id)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
        console.print(f"[red]error:[/red] the JSON for {what} is not valid ({problems}); fix those fields")
        raise typer.Exit(EXIT_USAGE) from None
    result = build_service(Settings()).handle(command, actor=actor, expected_version=expected_version)
    sys.stdout.write(
        json.dumps({"escalation_id": str(result.escalation_id), "version": result.version, "created": result.created})
        + "\n"
    )


notify = typer.Typer(help="Notifications: webhook subscriptions and the delivery log.", no_args_is_help=True)
app.add_typer(notify, name="notify")


@notify.command("subscribe")
def notify_subscribe(
    url: str = typer.Argument(..., help="Where to POST the signed CloudEvents (https)."),
    event_type: list[str] = typer.Option([], "--event-type", help="Only these event types (repeat; default all)."),
    customer: list[str] = typer.Option([], "--customer", help="Only these customers (repeat)."),
    region: list[str] = typer.Option([], "--region", help="Only these regions (repeat)."),
    severity: list[str] = typer.Option([], "--severity", help="Only these severities (repeat)."),
    actor: str = typer.Option(..., envvar="ESCALATIONS_ACTOR", help="Who adds it (a manager)."),
) -> None:
    """Add a webhook subscription; its signing secret is printed this once, and never again."""
    settings = Settings()
    created = add_subscription(
        read_model_engine(settings),
        url,
        utc_now(),
        actor,
        event_types=event_type,
        customers=customer,
        regions=region,
        severities=severity,
        allow_plain_http=settings.notify_allow_plain_http,
    )
    sys.stdout.write(
        json.dumps({"subscription_id": created.subscription_id, "secret": created.secret.get_secret_value()}) + "\n"
    )
    console.print("Keep the secret now: it is not shown again (verify with standardwebhooks.Webhook(secret).verify).")


@notify.command("list")
def notify_list(output: str = typer.Option("table", "--format", help="table or json.")) -> None:
    """The webhook subscriptions (URLs without credentials; never the secrets)."""
    print_rows("Webhook subscriptions", list_subscriptions(read_model_engine(Settings())), output)


@notify.command("pause")
def notify_pause(subscription_id: str) -> None:
    """Stop matching new events for a subscription (what is already queued still goes)."""
    set_paused(read_model_engine(Settings()), subscription_id, paused=True)


@notify.command("resume")
def notify_resume(subscription_id: str) -> None:
    """Match new events for a paused subscription again."""
    set_paused(read_model_engine(Settings()), subscription_id, paused=False)


@notify.command("remove")
def notify_remove(subscription_id: str) -> None:
    """Remove a subscription; its queued deliveries fail and end up dead."""
    remove_subscription(read_model_engine(Settings()), subscription_id)


@notify.command("dead")
def notify_dead(output: str = typer.Option("table", "--format", help="table or json.")) -> None:
    """The deliveries given up after the last retry."""
    engine = read_model_engine(Settings())
    create_notifier_schema(engine)
    print_rows("Dead deliveries", dead_deliveries(engine), output)


@notify.command("retry")
def notify_retry(
    delivery_id: str | None = typer.Argument(None, help="One delivery (default: every dead one)."),
) -> None:
    """Give dead deliveries a fresh set of attempts (the running delivery loop sends them)."""
    engine = read_model_engine(Settings())
    create_notifier_schema(engine)
    count = retry_dead(engine, utc_now(), delivery_id)
    console.print(f"{count} dead deliveries queued again.")


@notify.command("deliver")
def notify_deliver() -> None:
    """Run only the delivery loop (when the notifier consumer runs elsewhere) until stopped."""
    settings = Settings()
    loop = build_delivery_loop(settings, read_model_engine(settings))
    stop_on_signals(loop.stop)
    loop.run()


def _progress_of(bar: Progress, task: TaskID) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update


def print_rows(title: str, rows: list[dict[str, Any]], output: str) -> None:
    if output == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
    elif output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table(title=title)
        for column in rows[0] if rows else ["(no rows)"]:
            table.add_column(column)
        for row in rows:
            table.add_row(*("-" if v is None else str(v) for v in row.values()))
        console.print(table)


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
    serve_it: bool = typer.Option(False, "--serve", help="Keep the data and the dashboard up until Ctrl+C."),
    host: str = typer.Option("127.0.0.1", envvar="ESCALATIONS_HOST", help="With --serve: address to listen on."),
    port: int = typer.Option(8080, envvar="ESCALATIONS_PORT", help="With --serve: port to listen on."),
) -> None:
    """Walk the handbook's LDAP-proxy escalation and two others through the system and print them."""
    with tempfile.TemporaryDirectory(prefix="escalations-demo-") as tmp:
        if serve_it:
            serve_demo(Settings(data_dir=data_dir or Path(tmp)), host, port, console.print)
            return
        result = run_demo(Settings(data_dir=data_dir or Path(tmp)))
        print_history(result.service.history(result.story))
        for escalation_id in (result.story, *result.others):
            print_escalation(result.service.state(escalation_id))
        console.print(
            f"Published {result.published} events to topic {result.topic} "
            f"on the embedded Kafka-compatible broker at {result.bootstrap_servers}."
        )
        console.print("\nWhat the ledger noticed by itself (the watcher):")
        for line in result.noticed or ["nothing was due"]:
            console.print(f"  {line}")
        print_rows("Update compliance (the reporting read model)", result.reports["compliance"], "table")
        print_rows("Active escalations (the reporting read model)", result.reports["active"], "table")
        console.print("\nThe retrospective of the LDAP-proxy escalation (escalations retro ID):\n")
        sys.stdout.write(result.retrospective)
        print_notifications(result.notifications)


def print_notifications(messages: list[dict[str, Any]]) -> None:
    """What the notifier posted to the demo's local stand-in for Slack, as plain text."""
    console.print(
        f"\nThe notifier's messages ({len(messages)}, posted to a local stand-in for Slack's chat.postMessage):"
    )
    for message in messages:
        console.rule(f"{message['channel']}: {message['text']}", align="left")
        for block in message.get("blocks", [])[1:]:
            text = block.get("text", {}).get("text") or " ".join(e["text"] for e in block.get("elements", []))
            console.print(text, markup=False, highlight=False)


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


def print_escalation(escalation: dict[str, Any]) -> None:
    table = Table(title=f"Escalation {escalation['id']}", show_header=False)
    rows = {
        "customer": f"{escalation['customer']} ({escalation['region']})",
        "channel": escalation["channel"],
        "severity": f"{escalation['severity']} (updates: {escalation['cadence'].description})",
        "phase": str(escalation["phase"]) + (" (stalled)" if escalation["stalled_since"] else ""),
        "lead engineer": escalation["lead_engineer"] or "-",
        "exit criteria met": f"{len(escalation['criteria_met'])} of {len(escalation['exit_criteria'])}",
        "updates posted": str(escalation["updates_posted"]),
        "uncertainties": ", ".join(f"{k}: {v['state']}" for k, v in escalation["uncertainties"].items()) or "-",
        "specialist teams": ", ".join(escalation["specialist_teams"]) or "-",
        "outcome": escalation["outcome"] or "-",
        "retrospective": escalation["retrospective"] or "-",
        "version": str(escalation["version"]),
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
    except ValidationError as error:
        console.print(f"[red]error:[/red] invalid settings: {escape(describe_invalid(error))}", highlight=False)
        sys.exit(EXIT_USAGE)
    except SettingsError as error:
        # Its message names the variable that is not valid JSON; the value itself stays out of it.
        console.print(f"[red]error:[/red] invalid settings ({error}); fix the ESCALATIONS_* variable it names")
        sys.exit(EXIT_USAGE)
    except (BrokerUnavailableError, KafkaLoginError) as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_UNAVAILABLE)
    except (SubscriptionError, OutboundUrlError, StagingError) as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_USAGE)
    except (RelayLockedError, TopicMismatchError, ReadModelOutdatedError) as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_CONFLICT)
