"""Where each consumer group has got to: the next offset per partition, stored beside the read models.

The table belongs to the consumer runtime, not to any read model, so dropping one read model's
tables never moves another group back to the start; rebuilding a read model forgets only its own
group's offsets.
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


class StoredOffsets:
    """One consumer group's offsets; creates its table if the database has none yet."""

    def __init__(self, engine: sa.Engine, group: str) -> None:
        self.engine = engine
        self.group = group
        metadata.create_all(engine)

    def load(self, topic: str) -> dict[int, int]:
        query = sa.select(consumer_offsets.c.partition, consumer_offsets.c.next_offset).where(
            consumer_offsets.c.consumer_group == self.group, consumer_offsets.c.topic == topic
        )
        with self.engine.connect() as conn:
            return {int(p): int(o) for p, o in conn.execute(query)}

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
