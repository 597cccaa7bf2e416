"""Request bodies, built from the commands themselves: what a caller may send, validated first.

Each command's body has the command's facts (without the escalation id, which is in the path) and
its `Annotated` limits; FastAPI validates it, documents it in the OpenAPI schema, and turns it into
the command. So a new fact on a command needs no change here.
"""

from dataclasses import MISSING, fields
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from domain.commands import Command, Name, Text, Tickets
from domain.values import (
    ActionOutcome,
    ExitCriterionData,
    HandedOverRole,
    HelperKind,
    Level,
    Outcome,
    Region,
    RiskOutcome,
    Severity,
    Source,
    TaskData,
)

# The commands name their choices as strings (the aggregate parses them, for every caller); on the
# wire they are enums, so the OpenAPI document lists the allowed values. By field, or by
# (command, field) where one name means different choices.
CHOICES: dict[str, type[StrEnum]] = {
    "region": Region,
    "engineer_region": Region,
    "source": Source,
    "severity": Severity,
    "likelihood": Level,
    "impact": Level,
    "kind": HelperKind,
    "role": HandedOverRole,
}
CHOICES_BY_COMMAND: dict[tuple[str, str], type[StrEnum]] = {
    ("CloseEscalation", "outcome"): Outcome,
    ("SettleRisk", "outcome"): RiskOutcome,
    ("SettleFollowUpAction", "outcome"): ActionOutcome,
}


class Body(BaseModel):
    # Enum values reach the command as the plain strings the domain expects.
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class ExitCriterion(Body):
    id: Name
    description: Text


class Task(Body):
    description: Text
    tickets: Tickets


# The domain's nested shapes are TypedDicts; on the wire they are strict models (no unknown keys).
NESTED: dict[Any, type[BaseModel]] = {ExitCriterionData: ExitCriterion, TaskData: Task}
OCCURRED_AT = Field(default=None, description="when it happened; default now; never in the future")


class CommandBody(Body):
    def command(self, command_type: type[Command], **envelope: Any) -> Command:
        """The command this body asks for; `envelope` adds what the URL says (the escalation id)."""
        return command_type(**self.model_dump(), **envelope)


def body_of(command_type: type[Command]) -> type[CommandBody]:
    """The request body of one command type."""
    hints = get_type_hints(command_type, include_extras=True)
    definitions: dict[str, Any] = {}
    for field in fields(command_type):
        choice = CHOICES_BY_COMMAND.get((command_type.__name__, field.name)) or CHOICES.get(field.name)
        if field.name == "escalation_id":  # in the path, or chosen by the server when opening
            continue
        if choice is not None:
            default = ... if field.default is MISSING else field.default
            definitions[field.name] = (choice, default)
        elif field.name == "occurred_at":
            definitions[field.name] = (datetime | None, OCCURRED_AT)
        elif field.default is not MISSING:
            definitions[field.name] = (_wire_type(hints[field.name]), field.default)
        elif field.default_factory is not MISSING:
            definitions[field.name] = (_wire_type(hints[field.name]), Field(default_factory=field.default_factory))
        else:
            definitions[field.name] = (_wire_type(hints[field.name]), ...)
    return create_model(command_type.__name__, __base__=CommandBody, **definitions)


def _wire_type(annotation: Any) -> Any:
    """The annotation with the domain's nested TypedDicts replaced by their strict wire models."""
    if annotation in NESTED:
        return NESTED[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return Annotated[(_wire_type(args[0]), *annotation.__metadata__)]
    if origin is list:
        return list[_wire_type(args[0])]  # type: ignore[misc]
    if origin in (Union, type(int | None)):
        wired = tuple(_wire_type(arg) for arg in args)
        return Union[wired]  # noqa: UP007 - built from a tuple of types
    return annotation
