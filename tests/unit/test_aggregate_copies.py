"""The copies of an escalation handed out: each command's own deep copy, and the state as plain data."""

from __future__ import annotations

import copy
from typing import Any

from domain import commands as c
from domain.escalation import Escalation, _thawed
from domain.service import EscalationService
from tests.unit.test_midway import RISK, in_phase


def nested_containers(value: Any) -> list[Any]:
    """Every list and dict inside `value`, itself included."""
    if isinstance(value, list):
        return [value, *(inner for item in value for inner in nested_containers(item))]
    if isinstance(value, dict):
        return [value, *(inner for item in value.values() for inner in nested_containers(item))]
    return []


def a_full_escalation(service: EscalationService) -> Escalation:
    """An escalation whose lists and dicts hold lists and dicts: uncertainties, risks, emergencies."""
    escalation_id = in_phase(service, "emergency")
    service.handle(c.RaiseUncertainty(escalation_id=escalation_id, question="Which balancer?"), actor="m")
    service.handle(c.RecordRisk(escalation_id=escalation_id, **RISK), actor="m")
    escalation = service.repository.get(escalation_id)
    assert isinstance(escalation, Escalation)
    return escalation


def test_a_copy_shares_no_list_or_dict_with_the_original_at_any_depth(memory_service: EscalationService) -> None:
    original = a_full_escalation(memory_service)

    copied = copy.deepcopy(original)

    assert copied.as_data() == original.as_data()
    shared = {id(x) for x in nested_containers(vars(original))} & {id(x) for x in nested_containers(vars(copied))}
    assert not shared
    assert any(isinstance(item, dict) for item in nested_containers(vars(original))[1:])  # there was depth to copy


def test_the_state_as_data_names_each_fact_without_the_librarys_underscores(memory_service: EscalationService) -> None:
    escalation = a_full_escalation(memory_service)

    data = escalation.as_data()

    assert {"id", "version", "created_on", "modified_on", "customer", "risks"} <= set(data)
    assert not [name for name in data if name.startswith("_") or "pending" in name]
    assert (data["id"], data["version"]) == (escalation.id, escalation.version)
    assert set(data) == {name.lstrip("_") for name in vars(escalation)} - {"pending_events"}


def test_the_copy_thaws_lists_and_dicts_nested_in_either_and_shares_only_immutable_values() -> None:
    value = {"tasks": [{"tickets": ["ZD-1"]}, ["a", ["b"]]], "plain": ["x"], "moment": (1, 2)}

    thawed = _thawed(value)

    assert thawed == value
    assert not {id(x) for x in nested_containers(value)} & {id(x) for x in nested_containers(thawed)}
    assert thawed["moment"] is value["moment"]
