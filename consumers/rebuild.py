"""Rebuild a read model from offset zero: the same answer as the live consumer, from history alone."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
import structlog

from consumers.log_client import LogConsumer, TopicPartition
from consumers.runtime import ConsumerRunner

log = structlog.get_logger(__name__)
Progress = Callable[[int, int], None]  # (records read so far, records known to exist)


def rebuild(
    runner: ConsumerRunner,
    engine: sa.Engine,
    reader: LogConsumer,
    progress: Progress | None = None,
    *,
    reset: Callable[[sa.Engine], None],
) -> int:
    """Reset the read model (`reset` drops and recreates its tables), then apply the whole topic.

    Returns how many records were read. Only this runner's group starts over: the offsets of the
    other groups, stored in the same table, stay where they are. Caught up means: every partition's
    position has reached its end offset *and* a poll came back empty. End offsets alone are not
    trusted, since some brokers undercount them.
    """
    # Offsets first: a crash between the two steps then replays onto the old tables, which the
    # projectors skip as duplicates, rather than resuming an emptied read model past its history.
    runner.offsets.forget(runner.topic)
    reset(engine)
    partitions = [TopicPartition(runner.topic, p) for p in sorted(reader.partitions_for_topic(runner.topic) or [])]
    reader.assign(partitions)
    reader.seek_to_beginning(partitions)
    ends = reader.end_offsets(partitions)
    total = sum(ends.values())
    read = 0
    while True:
        # Once the known ends are reached, only a short poll is needed to confirm nothing follows.
        at_ends = all(reader.position(tp) >= ends[tp] for tp in partitions)
        batch = reader.poll(timeout=0.1 if at_ends else 0.5, max_records=runner.max_records)
        if batch:
            runner.apply_batch(batch)
            read += sum(len(records) for records in batch.values())
            if progress:
                progress(read, max(total, read))
            continue
        ends = reader.end_offsets(partitions)
        if all(reader.position(tp) >= ends[tp] for tp in partitions):
            break
    log.info("rebuild.done", topic=runner.topic, records=read, applied=runner.stats.applied)
    return read
