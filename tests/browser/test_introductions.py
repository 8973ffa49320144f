"""KBV Anlage 31b in the browser: the practitioner's call page offers the confirmation that everyone
present was introduced; clicking it shows it as done and records the audit event. The patient's
page has no such control."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.browser.conftest import (
    Practice,
    admit,
    check_in,
    enter_waiting_room,
    in_call,
    open_call,
    running_practice,
    screenshot,
    watch,
)
from vc_plugin.core.models import AuditEvent
from vc_plugin.domain.introductions import CONFIRMED

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HINT = "At the start, name everyone in the room on both sides, e.g. a relative or an assistant."


@pytest.fixture(scope="module")
def world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("introductions")) as practice:
        yield practice


def test_the_practitioner_confirms_the_introductions_in_the_call(browser, world: Practice):
    planned = world.plan(in_minutes=5)
    appointment = planned.appointment.public_id
    doctor = world.signed_in(browser, world.people.doc, "en").new_page()
    patient = world.context(browser, "en").new_page()
    problems = watch(doctor) + watch(patient)
    check_in(patient, planned.invitations[0].link, "Alex")
    enter_waiting_room(patient)
    open_call(doctor, world.url, appointment)
    admit(doctor, "Alex")
    in_call(doctor, patient)

    control = doctor.get_by_role("checkbox", name="Everyone present has been introduced")
    assert control.is_visible() and control.get_attribute("aria-checked") == "false"
    hint = doctor.locator("[data-introductions-hint]")
    assert hint.inner_text() == HINT
    screenshot(doctor, "introductions-practitioner-call")

    control.click()
    doctor.wait_for_selector("[data-introductions-button][aria-checked=true]")
    assert re.fullmatch(r"Introductions confirmed at \d{1,2}:\d{2}\W?(AM|PM)?\.", hint.inner_text()), hint.inner_text()
    assert control.get_attribute("aria-disabled") == "true"
    assert not doctor.locator("[data-introductions-error]").is_visible()
    session = world.host.db.session
    session.expire_all()
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == CONFIRMED)).all()
    assert (event.subject, event.actor_id, event.details) == (appointment, world.people.doc.id, {})
    screenshot(doctor, "introductions-confirmed")

    # Done is done: a second click changes nothing (the server would answer OK and record nothing).
    control.click(force=True)  # aria-disabled: Playwright would wait for it to be enabled
    session.expire_all()
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == CONFIRMED)).all()) == 1

    # The patient's page has no such control.
    assert patient.locator("[data-introductions]").count() == 0
    assert "Everyone present has been introduced" not in patient.inner_text("body")
    assert problems == []
    doctor.context.close()
    patient.context.close()
