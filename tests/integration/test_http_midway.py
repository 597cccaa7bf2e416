# ruff: noqa: F811 - pytest injects the shared fixtures by the names imported below
"""The API's new commands, who may act on which escalation, and as-of by occurred time."""

from __future__ import annotations

import httpx

from tests.integration.test_http_api import (  # noqa: F401 - the fixtures are shared
    AUDITOR,
    ENGINEER,
    SCOPE,
    UPDATE,
    api,
    command,
    opened,
    read_model,
    service,
    store_settings,
)


async def walked_to_scope(api: httpx.AsyncClient, lead: str) -> tuple[str, str]:
    escalation_id, etag = await opened(api)
    for path, body in [
        ("preparation", {"cs_process_followed": True, "tickets_reviewed": []}),
        ("lead", {"engineer": lead, "engineer_region": "EMEA"}),
        ("scope", SCOPE),
    ]:
        response = await command(api, escalation_id, path, body, etag)
        assert response.status_code == 200, response.text
        etag = response.headers["ETag"]
    return escalation_id, etag


async def test_an_engineer_acts_only_on_escalations_they_work_on(api: httpx.AsyncClient) -> None:
    escalation_id, etag = await walked_to_scope(api, lead="kenji.lead")

    refused = await command(api, escalation_id, "updates", UPDATE, etag, ENGINEER)
    added = await command(
        api,
        escalation_id,
        "helpers",
        {"engineer": "priya.lead", "engineer_region": "EMEA", "reason": "EMEA hours"},
        etag,
    )
    allowed = await command(api, escalation_id, "updates", UPDATE, added.headers["ETag"], ENGINEER)

    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (
        "an engineer acts only on escalations where they are the lead, a backup or a helper"
        in (refused.json()["detail"])
    )
    assert "on this one: kenji.lead" in refused.json()["detail"]
    assert (added.status_code, allowed.status_code) == (200, 200)


async def test_a_new_command_keeps_if_match_and_problem_documents(api: httpx.AsyncClient) -> None:
    escalation_id, etag = await walked_to_scope(api, lead="priya.lead")

    missing = await api.post(
        f"/escalations/{escalation_id}/severity",
        json={"severity": "high", "reason": "r"},
        headers={"Authorization": "Bearer m-token"},
    )
    same = await command(api, escalation_id, "severity", {"severity": "critical", "reason": "r"}, etag)
    lower = await command(api, escalation_id, "severity", {"severity": "medium", "reason": "better"}, etag)
    engineer = await command(api, escalation_id, "severity", {"severity": "low", "reason": "r"}, etag, ENGINEER)

    assert missing.status_code == 428
    assert same.status_code == 409
    assert "already critical" in same.json()["detail"]
    assert lower.status_code == 200
    assert engineer.status_code == 403


async def test_the_state_as_of_an_occurred_time_is_served(api: httpx.AsyncClient) -> None:
    escalation_id, _ = await walked_to_scope(api, lead="priya.lead")
    state = (await api.get(f"/escalations/{escalation_id}", headers=AUDITOR)).json()

    as_of = await api.get(
        f"/escalations/{escalation_id}/as-of", params={"occurred": state["opened_at"]}, headers=AUDITOR
    )
    neither = await api.get(f"/escalations/{escalation_id}/as-of", headers=AUDITOR)

    assert as_of.status_code == 200, as_of.text
    assert as_of.json()["phase"] == "active"  # every step so far happened at the opening moment (the test clock)
    assert neither.status_code == 422
