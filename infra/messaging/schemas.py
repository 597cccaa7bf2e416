"""JSON Schemas for every event type and an AsyncAPI document for the topic, generated from the
domain event definitions, so that a team consuming the stream needs nothing from our code.

`python -m infra.messaging.schemas` rewrites `docs/schemas/`, `docs/asyncapi.json` (payloads by
reference to those files) and `docs/asyncapi.bundled.json` (every schema inline, for registries and
catalogues that are given the document's text alone; the API serves it at /asyncapi.json); a test
fails when the checked-in files are not what this module generates.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, get_type_hints
from uuid import UUID

from pydantic import ConfigDict, create_model

from domain.events import ALL_EVENT_TYPES, EscalationEvent
from infra.messaging.envelope import CONTENT_TYPE, REQUIRED_HEADERS, SPEC_VERSION, type_name

DOCS = Path(__file__).resolve().parents[2] / "docs"
BOOKKEEPING = {"originator_id", "originator_version", "timestamp", "originator_topic", "class_version"}


def event_schema(event_class: type[EscalationEvent]) -> dict[str, Any]:
    hints = get_type_hints(event_class)
    fields: dict[str, Any] = {
        "escalation_id": (UUID, ...),
        "version": (int, ...),
        "recorded_at": (datetime, ...),
    }
    fields |= {name: (hint, ...) for name, hint in hints.items() if name not in BOOKKEEPING}
    model = create_model(
        event_class.__name__,
        __config__=ConfigDict(extra="allow", title=event_class.__name__),
        **fields,
    )
    schema: dict[str, Any] = model.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:escalation-ledger:schema:{type_name(event_class)}",
        "description": (event_class.__doc__ or f"The data of a {event_class.__name__} event.").strip(),
        **schema,
    }


def asyncapi(topic: str = "escalations.events.v1") -> dict[str, Any]:
    messages = {
        cls.__name__: {
            "name": type_name(cls),
            "title": cls.__name__,
            "contentType": CONTENT_TYPE,
            "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
            "payload": {"$ref": f"schemas/{type_name(cls)}.json"},
            "bindings": {"kafka": {"key": {"type": "string", "format": "uuid", "description": "escalation id"}}},
        }
        for cls in ALL_EVENT_TYPES
    }
    header_props: dict[str, Any] = {name: {"type": "string"} for name in REQUIRED_HEADERS}
    header_props["ce_specversion"] = {"const": SPEC_VERSION}
    header_props["content-type"] = {"const": CONTENT_TYPE}
    header_props["ce_id"] |= {"description": "the event's own id, stable across republishing"}
    header_props["ce_type"] |= {"description": "escalations.<EventName>.v<schema version>"}
    header_props["ce_time"] |= {"format": "date-time", "description": "when it occurred"}
    header_props["ce_subject"] |= {"format": "uuid", "description": "the escalation id"}
    header_props["ce_aggregateversion"] |= {"description": "the event's version within its escalation"}
    header_props["ce_position"] |= {"description": "the event store's global position"}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Escalation Ledger events",
            "version": "1.0.0",
            "description": (
                "Every recorded event of every account escalation, in order per escalation (key = escalation "
                "id), as CloudEvents 1.0 in Kafka binary content mode. Delivery is at least once: a "
                "republished event keeps its ce_id. Retention is unlimited: the topic is a replayable log. "
                "Consumers should ignore fields they do not know."
            ),
        },
        "channels": {
            "events": {
                "address": topic,
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": {
            "receiveEscalationEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/events"},
            }
        },
        "components": {
            "messages": messages,
            "schemas": {
                "CloudEventsHeaders": {
                    "type": "object",
                    "required": list(REQUIRED_HEADERS),
                    "properties": header_props,
                }
            },
        },
    }


def bundled_asyncapi(topic: str = "escalations.events.v1") -> dict[str, Any]:
    """The AsyncAPI document with every payload inline: no reference leaves the document."""
    document = asyncapi(topic)
    shared = document["components"]["schemas"]
    for cls in ALL_EVENT_TYPES:
        payload = event_schema(cls)
        del payload["$schema"]  # an AsyncAPI Schema Object, in the document's own dialect
        for name, definition in payload.pop("$defs", {}).items():
            if shared.setdefault(name, definition) != definition:
                msg = f"two events define {name} differently; rename one of them"
                raise ValueError(msg)
        document["components"]["messages"][cls.__name__]["payload"] = _local_refs(payload)
    return document


def _local_refs(node: Any) -> Any:
    """Pydantic's "#/$defs/X" references, pointed at the document's components instead."""
    if isinstance(node, dict):
        return {
            key: value.replace("#/$defs/", "#/components/schemas/") if key == "$ref" else _local_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_local_refs(item) for item in node]
    return node


def rendered() -> dict[Path, str]:
    """Every generated document, by its path under docs/."""
    files = {DOCS / "schemas" / f"{type_name(cls)}.json": _json(event_schema(cls)) for cls in ALL_EVENT_TYPES}
    files[DOCS / "asyncapi.json"] = _json(asyncapi())
    files[DOCS / "asyncapi.bundled.json"] = _json(bundled_asyncapi())
    return files


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write() -> list[Path]:
    (DOCS / "schemas").mkdir(parents=True, exist_ok=True)
    written = []
    for path, text in rendered().items():
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path.relative_to(DOCS.parent))  # noqa: T201 - a developer's tool
