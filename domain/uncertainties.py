"""How an uncertainty lives: raised open, then settled once, as a defined risk or by an answer.

The aggregate, the reporting facts and the retrospective fold the same events; this is the one
place that says which event settles an uncertainty, and into which state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

OPEN: Final = "open"
RISK: Final = "risk"
ANSWERED: Final = "answered"
# By event type name, so that the read side, which sees events as JSON, can fold them the same way.
SETTLED_BY: Final[Mapping[str, str]] = {"RiskDefined": RISK, "UncertaintyAnswered": ANSWERED}


def raised(question: str, raised_at: str) -> dict[str, Any]:
    return {"question": question, "raised_at": raised_at, "state": OPEN}


def settled(uncertainty: Mapping[str, Any], event_name: str, **details: Any) -> dict[str, Any]:
    """The uncertainty in the state the event settles it into, with what the event adds."""
    return {**uncertainty, "state": SETTLED_BY[event_name], **details}
