"""The escalation channels of one customer.

A customer may have several escalations at once, one per reason. This small aggregate, saved in
the same transaction as the escalation, keeps that rule under concurrency and names each channel.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import IllegalTransitionError, InvalidCommandError
from domain.values import channel_name, customer_slug, legacy_customer_key


class CustomerChannels(Aggregate):
    class Registered(Aggregate.Created):
        customer: str

    class Claimed(Aggregate.Event):
        escalation_id: str
        reason: str | None

        def apply(self, aggregate: CustomerChannels) -> None:
            aggregate.open_escalations[self.escalation_id] = self.reason

    class Released(Aggregate.Event):
        escalation_id: str

        def apply(self, aggregate: CustomerChannels) -> None:
            del aggregate.open_escalations[self.escalation_id]

    def __init__(self, customer: str) -> None:
        self.customer = customer
        self.open_escalations: dict[str, str | None] = {}

    @staticmethod
    def id_for(customer: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"escalation-ledger:customer:{legacy_customer_key(customer)}")

    @classmethod
    def register(cls, customer: str, at: datetime) -> CustomerChannels:
        return cls._create(cls.Registered, id=cls.id_for(customer), timestamp=at, customer=customer)

    def name_channel(self, template: str, reason: str | None) -> str:
        """The channel for a new escalation of this customer, or an error that says why not."""
        if not self.open_escalations:
            return channel_name(self.customer, template)
        if reason is None:
            msg = (
                f"customer {self.customer} already has an open escalation; give a reason "
                f"to tell this one apart (it names the channel)"
            )
            raise InvalidCommandError(msg)
        if customer_slug(reason) in {customer_slug(r) for r in self.open_escalations.values() if r}:
            msg = (
                f"customer {self.customer} already has an open escalation for {reason!r}; "
                f"use that escalation, or give a different reason"
            )
            raise IllegalTransitionError(msg)
        return channel_name(self.customer, template, suffix=reason)

    def claim(self, escalation_id: UUID, reason: str | None, at: datetime) -> None:
        self.trigger_event(self.Claimed, timestamp=at, escalation_id=str(escalation_id), reason=reason)

    def release(self, escalation_id: UUID, at: datetime) -> None:
        if str(escalation_id) in self.open_escalations:
            self.trigger_event(self.Released, timestamp=at, escalation_id=str(escalation_id))
