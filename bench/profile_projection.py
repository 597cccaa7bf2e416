"""CPU per event of each projector, offline: no broker, no other process, one core's worth of noise.

`python -m bench.profile_projection` records the seeded history (`bench/history.py`) in memory,
encodes every event as the relay does, lays the records out over the topic's partitions and cuts
them into batches as a consumer polls them. Then per projector, on a fresh SQLite file: decode
every batch once (timed apart), then time `projector.apply` and the commit of each batch with
`time.process_time`. `--max-records 100` comes closer to a live consumer's small batches than the
default 2000 of a rebuild. `--profile NAME` prints where that projector's time goes. The figures
compare run to run on one machine, not across machines.
"""

from __future__ import annotations

import argparse
import cProfile
import pickle
import pstats
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench import history
from consumers.log_client import Batch, LogRecord, TopicPartition
from consumers.notifier import NotifierProjector
from consumers.reporting import ReportingProjector
from consumers.runtime import Decoded, Projector
from consumers.timeline import TimelineProjector
from consumers.watcher import WatcherProjector
from domain.service import EscalationService
from infra.bootstrap import build_region_calendars, build_region_zones, deadline_policy
from infra.messaging.envelope import decode_record, encode, structured
from infra.settings import Settings
from projections.deadline_tables import create_watcher_schema
from projections.notification_tables import create_notifier_schema
from projections.tables import create_schema
from projections.timeline_tables import create_timeline_schema

TOPIC = "escalations.events"


def records(escalations: int, partitions: int) -> list[LogRecord]:
    """The seeded history as the relay writes it: keyed by escalation, each partition in order."""
    now = datetime.now(UTC)
    service = EscalationService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: now)
    history.record(service, escalations, now=now)
    notifications = service.recorder.select_notifications(start=None, limit=10**9, topics=service.event_topics())
    offsets = dict.fromkeys(range(partitions), 0)
    found = []
    for n in notifications:
        key, value, headers = encode(service.mapper.to_domain_event(n), n.id, "bench")  # type: ignore[arg-type]
        partition = zlib.crc32(key) % partitions
        found.append(LogRecord(TOPIC, partition, offsets[partition], key, value, headers, None))
        offsets[partition] += 1
    return found


def batches(found: list[LogRecord], max_records: int) -> list[Batch]:
    """Each poll takes an equal, contiguous share of every partition that still has records."""
    by_partition: dict[int, list[LogRecord]] = {}
    for record in found:
        by_partition.setdefault(record.partition, []).append(record)
    share = max(1, max_records // max(1, len(by_partition)))
    cut: list[Batch] = []
    start = 0
    while any(start < len(rs) for rs in by_partition.values()):
        cut.append(
            {
                TopicPartition(TOPIC, p): rs[start : start + share]
                for p, rs in sorted(by_partition.items())
                if start < len(rs)
            }
        )
        start += share
    return cut


def projectors(settings: Settings) -> dict[str, tuple[Callable[[], Projector], Callable[[sa.Engine], None]]]:
    calendars = build_region_calendars(settings)
    return {
        "reporting": (lambda: ReportingProjector(calendars=calendars), create_schema),
        "timeline": (lambda: TimelineProjector(build_region_zones(settings)), create_timeline_schema),
        "watcher": (lambda: WatcherProjector(calendars, deadline_policy(settings)), create_watcher_schema),
        "notifier": (
            lambda: NotifierProjector(
                cloudevent=lambda event: structured(event, "bench"),
                clock=lambda: datetime.now(UTC),
                max_age=timedelta(hours=24),
                slack=False,
            ),
            create_notifier_schema,
        ),
    }


def measure(name: str, cut: list[Batch], *, profile: bool) -> tuple[float, float, int, pstats.Stats | None]:
    """(decode µs per event, apply + commit µs per event, events, profile) on a fresh read model.

    Take the fastest of a few runs: the first one in a process also pays one-time costs (orjson's first
    dataclass, SQLAlchemy's statement caches)."""
    build, create = projectors(Settings())[name]
    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine(f"sqlite:///{folder}/{name}.db")
        create(engine)
        decoding = time.process_time()
        decoded = [[Decoded(r, decode_record(r)) for tp in sorted(batch) for r in batch[tp]] for batch in cut]
        decoding = time.process_time() - decoding
        events = sum(len(batch) for batch in decoded)
        projector = build()
        dead: list[tuple[LogRecord, Exception]] = []
        profiler = cProfile.Profile() if profile else None
        began = time.process_time()
        if profiler:
            profiler.enable()
        for batch in decoded:
            with engine.begin() as conn:
                projector.apply(conn, batch, lambda record, error: dead.append((record, error)))
        if profiler:
            profiler.disable()
        applying = time.process_time() - began
        engine.dispose()
    if dead:
        msg = f"{name}: {len(dead)} events failed, the first: {dead[0][1]!r}"
        raise RuntimeError(msg)
    stats = pstats.Stats(profiler) if profiler else None
    return decoding / events * 1e6, applying / events * 1e6, events, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--escalations", type=int, default=1500)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--max-records", type=int, default=2000, help="records per poll (the consumer's default)")
    parser.add_argument("--only", nargs="*", default=["reporting", "timeline", "watcher", "notifier"])
    parser.add_argument("--profile", metavar="NAME", help="print where this projector's time goes")
    parser.add_argument("--cache", type=Path, help="keep the encoded records here, to skip recording next time")
    parser.add_argument("--repeat", type=int, default=3, help="runs per projector; the fastest counts")
    args = parser.parse_args()
    if args.cache and args.cache.exists():
        found = pickle.loads(args.cache.read_bytes())  # noqa: S301 - our own file
    else:
        found = records(args.escalations, args.partitions)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(found))
    cut = batches(found, args.max_records)
    print(f"{len(found)} events in {len(cut)} batches of up to {args.max_records} over {args.partitions} partitions")
    for name in args.only:
        runs = [measure(name, cut, profile=False) for _ in range(args.repeat)]
        decoding, applying, events, _ = min(runs, key=lambda run: run[1])
        print(f"{name:10} decode {decoding:5.1f} µs/event  apply+commit {applying:6.1f} µs/event  ({events} events)")
        if name == args.profile:
            # After the timed runs: one-time costs (imports, caches warming) stay out of the profile.
            stats = measure(name, cut, profile=True)[3]
            assert stats is not None
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
