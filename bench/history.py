"""The seeded generator: realistic escalations, many customers, leads and regions, every event type.

One in ten is the handbook's full LDAP-proxy story (stalls, a specialist team, uncertainties, an
emergency, monitoring, closing, the retrospective); the rest are smaller escalations with their own
leads and customers. The same seed always gives the same escalations.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.service import EscalationService
from infra.stories import ldap_proxy_story, quiet_escalation

LEADS = [f"lead{n}" for n in range(1, 41)]
# Everyone the stories act as, with the role the API needs them to have.
ACTORS = {"mia.manager": "manager", "sam.manager": "manager", "priya.lead": "engineer"} | dict.fromkeys(
    LEADS, "engineer"
)


def escalations(service: EscalationService, count: int, seed: int = 7, first: int = 0) -> Iterator[UUID]:
    """Record `count` escalations through the service (or anything with its command methods)."""
    rng = random.Random(seed + first)
    start = datetime.now(UTC) - timedelta(days=30)
    for i in range(first, first + count):
        if i % 10 == 0:
            yield ldap_proxy_story(service, start + timedelta(minutes=i % 10_000), customer=f"Globex {i}")
        else:
            yield quiet_escalation(
                service,
                start + timedelta(hours=rng.randint(0, 400)),
                customer=f"Customer {i}",
                region=rng.choice(["AMER", "EMEA", "APAC"]),
                lead=rng.choice(LEADS),
            )


def record(service: EscalationService, count: int, advance: Callable[[], None] = lambda: None) -> list[UUID]:
    recorded = []
    for escalation_id in escalations(service, count):
        recorded.append(escalation_id)
        advance()
    return recorded


def events_of(service: EscalationService, recorded: list[UUID]) -> int:
    """How many escalation events these escalations hold (the customer-channel registry not counted)."""
    return sum(service.escalation(escalation_id).version for escalation_id in recorded)
