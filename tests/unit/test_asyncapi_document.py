"""The bundled AsyncAPI document stands alone and is valid against the AsyncAPI 3.0 specification's JSON Schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra.messaging.schemas import DOCS, bundled_asyncapi

SPEC = Path(__file__).parents[1] / "support" / "asyncapi-specs" / "3.0.0-without-$id.json"


@pytest.fixture(scope="module")
def specification() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.fail(f"{SPEC} is missing: run `make asyncapi-specs` (npm pack @asyncapi/specs) once")
    return json.loads(SPEC.read_text())


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolves(document: dict[str, Any], pointer: str) -> bool:
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_reference_of_the_bundled_document_resolves_inside_it() -> None:
    document = json.loads((DOCS / "asyncapi.bundled.json").read_text())

    found = list(refs(document))

    assert found
    assert [ref for ref in found if not ref.startswith("#/") or not resolves(document, ref)] == []


def test_the_bundled_document_is_valid_asyncapi_3(specification: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(specification)

    problems = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(bundled_asyncapi())]
    broken = [e.message for e in validator.iter_errors(bundled_asyncapi() | {"channels": {"events": {"address": 5}}})]

    assert problems == []
    assert broken, "the specification's schema rejects nothing: it is not the schema it should be"
