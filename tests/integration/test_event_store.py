"""The application on real event stores: SQLite files and PostgreSQL."""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import pytest

from domain import commands as c
from domain.channels import CustomerChannels
from domain.errors import IllegalTransitionError, InvalidCommandError, VersionConflictError
from domain.events import EscalationClosed, EscalationOpened, RetrospectiveOpened
from domain.service import EscalationService
from domain.values import Phase
from infra.bootstrap import build_service
from infra.local.stories import ldap_proxy_story
from infra.settings import Settings
from tests.fakes import SteppingClock

MakeService = Callable[..., EscalationService]


GLOBEX = c.OpenEscalation(
    customer="Globex",
    region="EMEA",
    account_owner="dana",
    dri_manager="m",
    source="support_manager",
    severity="high",
    summary="s",
)


def open_globex(service: EscalationService) -> UUID:
    return service.handle(GLOBEX, actor="m").escalation_id


def test_the_ldap_proxy_story_is_recorded_and_read_back(make_service: MakeService, clock: SteppingClock) -> None:
    writer = make_service()

    escalation_id = ldap_proxy_story(writer, clock.now - timedelta(days=14))

    reader = make_service()
    escalation = reader.state(escalation_id)
    history = reader.history(escalation_id)
    assert escalation["phase"] is Phase.CLOSED
    assert escalation["retrospective"] == "escalated-customers#311"
    assert escalation["uncertainties"]["U1"]["state"] == "answered"
    assert escalation["uncertainties"]["U2"]["state"] == "risk"
    assert isinstance(history[0], EscalationOpened)
    assert isinstance(history[-2], EscalationClosed)
    assert isinstance(history[-1], RetrospectiveOpened)
    assert [e.originator_version for e in history] == list(range(1, escalation["version"] + 1))


def test_two_writers_with_the_same_expected_version_one_wins_one_gets_a_conflict(
    make_service: MakeService,
) -> None:
    first, second = make_service(), make_service()
    escalation_id = open_globex(first)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def prepare(service: EscalationService) -> None:
        barrier.wait()
        try:
            outcomes.append(
                service.handle(
                    c.CompletePreparation(escalation_id=escalation_id, cs_process_followed=True, tickets_reviewed=[]),
                    actor="m",
                    expected_version=1,
                )
            )
        except VersionConflictError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=prepare, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    conflicts = [o for o in outcomes if isinstance(o, VersionConflictError)]
    assert len(outcomes) == 2
    assert len(conflicts) == 1
    assert "read it again and retry" in str(conflicts[0])
    assert len(first.history(escalation_id)) == 2


def test_a_lost_race_inside_the_store_is_a_conflict_not_an_overwrite(make_service: MakeService) -> None:
    first, second = make_service(), make_service()
    escalation_id = open_globex(first)
    # Both load version 1 and both pass the expected-version check; only the store can tell.
    mine, theirs = first._load(escalation_id), second._load(escalation_id)
    stamp = first._stamp("m", None)
    mine.complete_preparation(stamp, cs_process_followed=True, tickets_reviewed=["ZD-1"])
    theirs.complete_preparation(stamp, cs_process_followed=False, tickets_reviewed=["ZD-2"])
    first._save(mine)

    with pytest.raises(VersionConflictError, match="changed by someone else"):
        second._save(theirs)

    assert first.state(escalation_id)["tickets_reviewed"] == ["ZD-1"]


def test_a_writer_with_a_cached_escalation_sees_what_another_writer_saved(make_service: MakeService) -> None:
    first, second = make_service(), make_service()
    escalation_id = open_globex(first)
    assert second.state(escalation_id)["version"] == 1  # now in the second writer's cache

    first.handle(
        c.CompletePreparation(escalation_id=escalation_id, cs_process_followed=True, tickets_reviewed=["ZD-1"]),
        actor="m",
        expected_version=1,
    )
    with pytest.raises(VersionConflictError):
        second.handle(
            c.CompletePreparation(escalation_id=escalation_id, cs_process_followed=False, tickets_reviewed=[]),
            actor="m",
            expected_version=1,
        )

    seen = second.state(escalation_id)
    assert (seen["version"], seen["tickets_reviewed"]) == (2, ["ZD-1"])
    result = second.handle(
        c.AssignLeadEngineer(escalation_id=escalation_id, engineer="priya", engineer_region="EMEA"),
        actor="m",
        expected_version=2,
    )
    assert result.version == 3
    assert first.state(escalation_id)["lead_engineer"] == "priya"


def prepare(service: EscalationService, escalation_id: UUID, expected_version: int | None = None) -> c.CommandResult:
    return service.handle(
        c.CompletePreparation(escalation_id=escalation_id, cs_process_followed=True, tickets_reviewed=["ZD-1"]),
        actor="m",
        expected_version=expected_version,
    )


def assign_priya(
    service: EscalationService, escalation_id: UUID, expected_version: int | None = None
) -> c.CommandResult:
    return service.handle(
        c.AssignLeadEngineer(escalation_id=escalation_id, engineer="priya", engineer_region="EMEA"),
        actor="m",
        expected_version=expected_version,
    )


def test_a_command_on_a_cached_escalation_writes_without_reading_the_store(make_service: MakeService) -> None:
    service = make_service()
    escalation_id = open_globex(service)
    reads: list[UUID] = []
    store_get = service.repository.event_store.get
    service.repository.event_store.get = lambda originator_id, **kw: (
        reads.append(originator_id)
        or store_get(  # type: ignore[method-assign]
            originator_id, **kw
        )
    )

    prepare(service, escalation_id, expected_version=1)
    assign_priya(service, escalation_id, expected_version=2)

    assert reads == []
    assert [e.originator_version for e in make_service().history(escalation_id)] == [1, 2, 3]


def test_a_writer_whose_cache_is_behind_decides_again_on_what_the_store_holds(make_service: MakeService) -> None:
    first, second = make_service(), make_service()
    escalation_id = open_globex(first)
    second.state(escalation_id)  # version 1 in the second writer's cache
    prepare(first, escalation_id)

    result = assign_priya(second, escalation_id)  # refused at version 1 (not prepared), legal at version 2

    assert result.version == 3
    assert first.state(escalation_id)["tickets_reviewed"] == ["ZD-1"]
    assert first.state(escalation_id)["lead_engineer"] == "priya"


def test_a_writer_whose_cache_is_behind_accepts_the_version_another_writer_made(make_service: MakeService) -> None:
    first, second = make_service(), make_service()
    escalation_id = open_globex(first)
    second.state(escalation_id)
    version = prepare(first, escalation_id).version

    result = assign_priya(second, escalation_id, expected_version=version)

    assert result.version == version + 1


def test_a_stale_channel_registry_does_not_let_a_second_opening_take_the_same_channel(
    make_service: MakeService,
) -> None:
    first, second = make_service(), make_service()
    open_globex(second)  # Globex's channel registry, now in the second writer's cache
    ldap = replace(GLOBEX, reason="ldap")
    first.handle(ldap, actor="m")

    with pytest.raises(IllegalTransitionError, match="already has an open escalation for 'ldap'"):
        second.handle(ldap, actor="m")

    assert second.state(second.handle(replace(GLOBEX, reason="sso"), actor="m").escalation_id)["version"] == 1


def test_closing_on_a_stale_channel_registry_decides_again_and_frees_the_channel(make_service: MakeService) -> None:
    first, second = make_service(), make_service()
    globex = open_globex(second)  # Globex's channel registry, now in the second writer's cache
    ldap = first.handle(replace(GLOBEX, reason="ldap"), actor="m").escalation_id  # the registry moves on

    second.handle(
        c.CloseEscalation(
            escalation_id=globex,
            outcome="positive",
            exit_criteria_met=True,
            summary="opened by mistake",
            closing_checklist_done=True,
            customer_comfortable=True,
            agreed_with_account_owner=True,
            override_reason="opened by mistake",
        ),
        actor="m",
    )

    registry = make_service().repository.get(CustomerChannels.id_for("Globex"))  # read from the store
    assert registry.open_escalations == {str(ldap): "ldap"}  # the closed one freed, the other kept


def test_a_customer_registered_by_another_writer_keeps_its_open_escalations(make_service: MakeService) -> None:
    first, second = make_service(), make_service()
    open_globex(first)

    with pytest.raises(InvalidCommandError, match="already has an open escalation; give a reason"):
        second.handle(GLOBEX, actor="m")
    opened = second.state(second.handle(replace(GLOBEX, reason="sso"), actor="m").escalation_id)

    assert opened["channel"].endswith("sso")


def test_who_works_on_an_escalation_is_read_again_when_another_writer_has_moved_it_on(
    make_service: MakeService,
) -> None:
    first, second = make_service(), make_service()
    escalation_id = open_globex(first)
    prepare(first, escalation_id)
    assign_priya(first, escalation_id)
    helped = first.handle(
        c.AddHelper(escalation_id=escalation_id, engineer="ana", engineer_region="AMER", reason="LDAP"), actor="m"
    )
    assert "ana" in second.engineers_on(escalation_id, helped.version)  # now in the second writer's cache
    removed = first.handle(c.RemoveHelper(escalation_id=escalation_id, engineer="ana", reason="done"), actor="m")

    assert "ana" not in second.engineers_on(escalation_id, removed.version)
    with pytest.raises(VersionConflictError):
        second.handle(
            c.RemoveHelper(escalation_id=escalation_id, engineer="ana", reason="done"),
            actor="m",
            expected_version=helped.version,
        )


def test_as_of_gives_the_escalation_as_it_was_then(make_service: MakeService, clock: SteppingClock) -> None:
    service = make_service()
    escalation_id = open_globex(service)
    opened_at = clock.now
    clock.advance(hours=1)
    service.handle(
        c.CompletePreparation(escalation_id=escalation_id, cs_process_followed=True, tickets_reviewed=[]),
        actor="m",
        expected_version=1,
    )

    assert service.state_as_of(escalation_id, opened_at)["phase"] is Phase.OPENED
    assert service.state_as_of(escalation_id, clock.now)["phase"] is Phase.PREPARED


def test_a_store_written_with_a_key_is_unreadable_without_it(store_settings: Settings, clock: SteppingClock) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    encrypted = store_settings.but(cipher_key=key)
    service = build_service(encrypted, clock=clock)
    escalation_id = service.handle(
        c.OpenEscalation(
            customer="Secret Customer Inc",
            region="EMEA",
            account_owner="dana",
            dri_manager="m",
            source="support_manager",
            severity="high",
            summary="confidential outage",
        ),
        actor="m",
    ).escalation_id
    assert build_service(encrypted, clock=clock).state(escalation_id)["customer"] == "Secret Customer Inc"

    without_key = build_service(store_settings, clock=clock)

    with pytest.raises(Exception):  # noqa: B017, PT011 - the library's decode error, whatever its type
        without_key.state(escalation_id)
    if store_settings.event_store == "sqlite":
        raw = sqlite3.connect(store_settings.event_store_path).execute("select state from stored_events").fetchall()
        assert all(b"Secret Customer" not in bytes(row[0]) for row in raw)
