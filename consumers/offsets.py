"""Where each consumer group has got to: the next offset per partition, stored beside the read models.

The table belongs to the consumer runtime, not to any read model, so dropping one read model's
tables never moves another group back to the start; rebuilding a read model forgets only its own
group's offsets.

Beside the offsets each group has a generation: a rebuild that switches a freshly built read model
in for the live one (`consumers/switch.py`) raises it in the same transaction as it replaces the
rows and the offsets. Every batch a consumer applies first claims the generation it loaded with its
offsets (`claim`, which also takes the group's row lock): a consumer that loaded its offsets before
the switch finds the generation moved, applies nothing, and seeks to the offsets the rebuild left.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
consumer_offsets = sa.Table(
    "consumer_offsets",
    metadata,
    sa.Column("consumer_group", sa.String(200), primary_key=True),
    sa.Column("topic", sa.String(255), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
read_model_generations = sa.Table(
    "read_model_generations",
    metadata,
    sa.Column("consumer_group", sa.String(200), primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
)


class ReadModelSwitchedError(Exception):
    """The read model was switched for a rebuilt one since this consumer loaded its offsets: seek to the stored ones."""


class StoredOffsets:
    """One consumer group's offsets; creates its table if the database has none yet."""

    def __init__(self, engine: sa.Engine, group: str) -> None:
        self.engine = engine
        self.group = group
        metadata.create_all(engine)
        ensure_generation(engine, group)

    def load(self, topic: str) -> dict[int, int]:
        query = sa.select(consumer_offsets.c.partition, consumer_offsets.c.next_offset).where(
            consumer_offsets.c.consumer_group == self.group, consumer_offsets.c.topic == topic
        )
        with self.engine.connect() as conn:
            return {int(p): int(o) for p, o in conn.execute(query)}

    def load_position(self, topic: str) -> tuple[int, dict[int, int]]:
        """The generation, then the offsets: read in that order, a switch in between costs one retried batch,
        never a batch applied at old offsets onto the rebuilt rows."""
        return self.generation(), self.load(topic)

    def generation(self) -> int:
        t = read_model_generations
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(t.c.generation).where(t.c.consumer_group == self.group)).scalar()
        return int(found or 0)

    def claim(self, conn: sa.Connection, generation: int) -> None:
        """First statement of every batch: locks the group's row until the commit; fails if a switch came between."""
        t = read_model_generations
        where = (t.c.consumer_group == self.group) & (t.c.generation == generation)
        if conn.execute(t.update().where(where).values(generation=t.c.generation)).rowcount != 1:
            msg = f"the read model of {self.group} was switched for a rebuilt one; seek to its stored offsets"
            raise ReadModelSwitchedError(msg)

    def save(self, conn: sa.Connection, topic: str, next_offsets: dict[int, int]) -> None:
        for partition, offset in next_offsets.items():
            where = (
                (consumer_offsets.c.consumer_group == self.group)
                & (consumer_offsets.c.topic == topic)
                & (consumer_offsets.c.partition == partition)
            )
            if conn.execute(consumer_offsets.update().where(where).values(next_offset=offset)).rowcount == 0:
                conn.execute(
                    consumer_offsets.insert().values(
                        consumer_group=self.group, topic=topic, partition=partition, next_offset=offset
                    )
                )

    def forget(self, topic: str) -> None:
        """Start this group over from offset zero; the other groups keep their places."""
        with self.engine.begin() as conn:
            conn.execute(
                consumer_offsets.delete().where(
                    consumer_offsets.c.consumer_group == self.group, consumer_offsets.c.topic == topic
                )
            )


def ensure_generation(engine: sa.Engine, group: str) -> None:
    t = read_model_generations
    with engine.connect() as conn:
        if conn.execute(sa.select(t.c.generation).where(t.c.consumer_group == group)).first() is not None:
            return
    try:
        with engine.begin() as conn:
            conn.execute(t.insert().values(consumer_group=group, generation=0))
    except sa.exc.IntegrityError:
        pass  # another member of the group inserted it first
