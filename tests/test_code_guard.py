"""Wrong codes pause only the client that enters them: nobody can lock a patient out, and guessing stays hopeless.

Each claim has its negative beside it. Clients are told apart by address (``REMOTE_ADDR``), as
behind a correctly configured proxy. Time is the FrozenClock's, never slept; the rate limiter's
budget is raised so that these tests see the code guard alone (the limiter has its own tests in
``test_hardening.py``). Every test runs with the embedded store and with Redis, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from tests.support.hosts import HostApp, make_host_app
from tests.support.people import People, make_people
from tests.support.web import csrf
from vc_plugin import signals
from vc_plugin.core.clock import FrozenClock
from vc_plugin.core.crypto import generate_access_code
from vc_plugin.core.models import AuditEvent, Invitation
from vc_plugin.domain.access import Principal
from vc_plugin.domain.appointments import PlannedAppointment
from vc_plugin.domain.code_guard import PREFIX, Allowance, MemoryCodeGuard, RedisCodeGuard, most_tries
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn, SendIn

STRANGER = "192.0.2.66"
PATIENT = "198.51.100.7"


def waits(response: Any) -> int:
    """Minutes to wait, from ``Retry-After`` (Flask-Limiter recomputes it with the wall clock: a second either way)."""
    seconds = int(response.headers["Retry-After"])
    assert seconds % 60 in {59, 0, 1}, seconds
    return round(seconds / 60)


@dataclass
class Device:
    """One browser at one address."""

    client: Any
    tokens: dict[str, str] = field(default_factory=dict)

    def page(self, invitation_id: str) -> Any:
        return self.client.get(f"/vc/join/{invitation_id}", headers={"Accept-Language": "en"})

    def try_code(self, invitation_id: str, code: str) -> Any:
        link = f"/vc/join/{invitation_id}"
        if invitation_id not in self.tokens:
            self.tokens[invitation_id] = csrf(self.client, link)
        form = {"csrf_token": self.tokens[invitation_id], "code": code, "name": "Frau Test", "consent": "yes"}
        return self.client.post(link, data=form, headers={"Accept-Language": "en"})


@dataclass
class Guarded:
    host: HostApp
    people: People
    clock: FrozenClock

    @property
    def state(self) -> Any:
        return self.host.state

    def plan(self, minutes_ahead: int = 10, minutes: int = 30) -> PlannedAppointment:
        start = self.clock.now() + timedelta(minutes=minutes_ahead)
        return self.state.appointments.plan(
            Principal.of(self.people.doc),
            AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=minutes), participants=[ParticipantIn()]),
        )

    def device(self, address: str) -> Device:
        client = self.host.app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return Device(client)

    def invitation(self, invitation_id: str) -> Invitation:
        self.state.db.session.expire_all()  # requests commit in their own sessions
        return self.state.db.session.scalars(select(Invitation).where(Invitation.public_id == invitation_id)).one()

    def pauses_reported(self) -> list[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.action == "invitation.code_locked")
        return list(self.state.db.session.scalars(query))


@pytest.fixture(params=["memory", "redis"])
def build(request, database_url, clock, redis_url) -> Iterator[Callable[..., Guarded]]:  # type: ignore[no-untyped-def]
    """Build the app with the embedded store or with Redis, and keep an app context for the test."""
    made: list[tuple[HostApp, Any]] = []

    def make(**config: Any) -> Guarded:
        config.setdefault("VC_RATELIMIT_CODE_ENTRY", "10000/minute")
        if request.param == "redis":
            config["VC_REDIS_URL"] = redis_url
        host = make_host_app(database_url, clock=clock, **config)
        context = host.app.app_context()
        context.push()
        made.append((host, context))
        return Guarded(host, make_people(host.state), clock)

    yield make
    for host, context in reversed(made):
        context.pop()
        host.close()


def test_a_strangers_wrong_codes_never_keep_the_patient_out(build) -> None:  # type: ignore[no-untyped-def]
    g = build()
    planned = g.plan()
    issued = planned.invitations[0]
    link_id = issued.invitation.public_id
    started = g.clock.now()
    heard: list[dict[str, Any]] = []

    def receiver(sender: Any, **payload: Any) -> None:
        heard.append(payload)

    stranger, patient = g.device(STRANGER), g.device(PATIENT)
    with signals.code_entry_locked.connected_to(receiver):
        typo = patient.try_code(link_id, generate_access_code())
        assert typo.status_code == 403 and "After 9 more wrong codes, this device" in typo.get_data(as_text=True)
        for left in range(9, 0, -1):
            wrong = stranger.try_code(link_id, generate_access_code())
            assert wrong.status_code == 403, "the patient's typo did not use up the stranger's tries, nor theirs"
            assert f"After {left} more wrong code" in wrong.get_data(as_text=True)
        paused = stranger.try_code(link_id, generate_access_code())
        assert paused.status_code == 429 and waits(paused) == 15
        assert "Too many wrong codes were entered on this device" in paused.get_data(as_text=True)

        # The stranger's client pauses: refused before any code is checked, the right code too.
        for code in (generate_access_code(), issued.code):
            refused = stranger.try_code(link_id, code)
            assert refused.status_code == 429 and waits(refused) == 15
        assert "Too many wrong codes" in stranger.page(link_id).get_data(as_text=True)
        g.clock.advance(timedelta(minutes=14, seconds=59))
        assert stranger.try_code(link_id, issued.code).status_code == 429
        assert g.invitation(link_id).failed_code_attempts == 11, "refused tries are not checked, so not counted"

        # The patient's client is not paused, and the right code works there.
        assert "Too many wrong codes" not in patient.page(link_id).get_data(as_text=True)
        assert patient.try_code(link_id, issued.code).status_code == 302

    # The practitioner learns that someone was guessing: audit, signal, API and page.
    [event] = g.pauses_reported()
    assert event.subject == planned.appointment.public_id and event.details == {"minutes": 15}
    assert heard == [{"appointment_id": planned.appointment.public_id, "invitation_id": link_id}]
    invitation = g.invitation(link_id)
    assert invitation.code_locks == 1 and invitation.code_locked_until == started + timedelta(minutes=15)
    _, token = g.state.api_tokens.create("praxis-nord", "case tool")
    api = g.host.app.test_client().get(
        f"/vc/api/v1/appointments/{planned.appointment.public_id}", headers={"Authorization": f"Bearer {token}"}
    )
    [shown] = api.json["invitations"]
    assert shown["code_locks"] == 1
    assert datetime.fromisoformat(shown["code_locked_until"]) == started + timedelta(minutes=15)


def test_many_strangers_cannot_keep_the_patient_out_and_each_of_them_pauses(build) -> None:  # type: ignore[no-untyped-def]
    g = build(VC_CODE_MAX_ATTEMPTS=3)
    issued = g.plan().invitations[0]
    link_id = issued.invitation.public_id
    addresses = [f"192.0.2.{n}" for n in range(10, 14)] + [f"2001:db8:{n}::1" for n in range(1, 5)]
    strangers = [g.device(address) for address in addresses]
    for stranger in strangers:
        assert [stranger.try_code(link_id, generate_access_code()).status_code for _ in range(3)] == [403, 403, 429]
    for stranger in strangers:
        assert stranger.try_code(link_id, issued.code).status_code == 429, "each stranger pauses, right code or not"
    assert g.invitation(link_id).failed_code_attempts == 3 * len(strangers)
    assert g.invitation(link_id).code_locks == len(strangers) == len(g.pauses_reported())

    assert g.device(PATIENT).try_code(link_id, issued.code).status_code == 302


def test_an_ipv6_client_counts_by_its_network(build) -> None:  # type: ignore[no-untyped-def]
    g = build(VC_CODE_MAX_ATTEMPTS=3)
    issued = g.plan().invitations[0]
    link_id = issued.invitation.public_id
    first = g.device("2001:db8:aa:1::1")
    assert [first.try_code(link_id, generate_access_code()).status_code for _ in range(3)] == [403, 403, 429]
    # Another address of the same /64 shares the pause: hopping addresses gains nothing ...
    assert g.device("2001:db8:aa:1:ffff::2").try_code(link_id, issued.code).status_code == 429
    # ... another network does not.
    other = g.device("2001:db8:aa:2::1").try_code(link_id, generate_access_code())
    assert other.status_code == 403 and "After 2 more wrong codes" in other.get_data(as_text=True)
    # An IPv4 client written as an IPv6-mapped address is the same client.
    mapped = g.device("::ffff:192.0.2.5")
    assert [mapped.try_code(link_id, generate_access_code()).status_code for _ in range(3)] == [403, 403, 429]
    assert g.device("192.0.2.5").try_code(link_id, issued.code).status_code == 429
    assert g.device("192.0.2.6").try_code(link_id, issued.code).status_code == 302


def test_pauses_double_so_one_client_gets_15_guesses_in_the_whole_check_in_window(build) -> None:  # type: ignore[no-untyped-def]
    """The arithmetic in docs/security.md, checked against the running service."""
    g = build()
    # The longest appointment (8 hours), planned so that check-in opens now (30 minutes before the start).
    planned = g.plan(minutes_ahead=30, minutes=8 * 60)
    issued = planned.invitations[0]
    link_id = issued.invitation.public_id
    opens = g.clock.now()
    closes = planned.appointment.ends_at + timedelta(minutes=30)
    stranger = g.device(STRANGER)
    pauses = []
    while True:  # the best a guesser can do: try again the moment each pause ends
        response = stranger.try_code(link_id, generate_access_code())
        assert response.status_code in {403, 429}
        if response.status_code == 429:
            pauses.append(waits(response))
            if g.clock.now() + timedelta(minutes=pauses[-1]) > closes:
                break
            g.clock.advance(timedelta(minutes=pauses[-1]))
    assert pauses == [15, 30, 60, 120, 240, 480]
    guesses = g.invitation(link_id).failed_code_attempts
    window = (closes - opens).total_seconds()
    assert guesses == most_tries(window, Allowance(tries=10, first_pause=900)) == 15
    assert len(g.pauses_reported()) == len(pauses)
    # To the last minute of the link, the patient's client is let in.
    g.clock.set(closes)
    assert g.device(PATIENT).try_code(link_id, issued.code).status_code == 302


def test_a_pause_does_not_end_at_midnight(build, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 11, 23, 23, 50, tzinfo=UTC))
    g = build(VC_CODE_MAX_ATTEMPTS=3)
    issued = g.plan().invitations[0]
    link_id = issued.invitation.public_id
    stranger = g.device(STRANGER)
    assert [stranger.try_code(link_id, generate_access_code()).status_code for _ in range(3)] == [403, 403, 429]
    clock.advance(timedelta(minutes=14))  # 00:04, a new day
    assert stranger.try_code(link_id, issued.code).status_code == 429
    clock.advance(timedelta(minutes=1))
    assert stranger.try_code(link_id, issued.code).status_code == 302


def test_records_in_redis_hold_no_address_end_with_the_link_and_a_new_code_starts_afresh(  # type: ignore[no-untyped-def]
    database_url, clock, redis_url
) -> None:
    host = make_host_app(
        database_url,
        clock=clock,
        VC_REDIS_URL=redis_url,
        VC_RATELIMIT_CODE_ENTRY="10000/minute",
        VC_CODE_MAX_ATTEMPTS=3,
    )
    redis = Redis.from_url(redis_url)
    try:
        with host.app.app_context():
            g = Guarded(host, make_people(host.state), clock)
            issued = g.plan().invitations[0]  # starts in 10 minutes, lasts 30; the link closes 30 minutes later
            link_id = issued.invitation.public_id
            stranger, patient = g.device(STRANGER), g.device(PATIENT)
            for _ in range(3):
                stranger.try_code(link_id, generate_access_code())
            assert patient.try_code(link_id, generate_access_code()).status_code == 403

            keys = redis.keys(PREFIX + "*")
            assert len(keys) == 2
            stored = b" ".join(keys + [v for key in keys for pair in redis.hgetall(key).items() for v in pair])
            for secret in (STRANGER, PATIENT, link_id, issued.code):
                assert secret.encode() not in stored
            link_closes = 70 * 60
            assert all(link_closes - 60 < redis.ttl(key) <= link_closes for key in keys)

            assert patient.try_code(link_id, issued.code).status_code == 302
            assert len(redis.keys(PREFIX + "*")) == 1, "the right code ends the client's record"

            # A new code (say the stranger was the patient with an old invitation): its hash makes new records.
            renewed = host.state.appointments.resend(
                Principal.of(g.people.doc), link_id, SendIn(email="patient@example.org")
            )
            assert stranger.try_code(link_id, issued.code).status_code == 403, "the old code is simply wrong now"
            assert stranger.try_code(link_id, renewed.code).status_code == 302
    finally:
        redis.close()
        host.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_parallel_tries_cannot_slip_past_the_allowance(kind, redis_url) -> None:  # type: ignore[no-untyped-def]
    """A try is counted before its code is checked, atomically: forty at once get exactly the allowance."""
    allowance = Allowance(tries=5, first_pause=900)
    redis = Redis.from_url(redis_url)
    guard = RedisCodeGuard(redis, allowance) if kind == "redis" else MemoryCodeGuard(allowance)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()
    key = PREFIX + "parallel"
    results = []
    start = threading.Barrier(40)

    def one() -> None:
        start.wait()
        results.append(guard.attempt(key, now=now, keep_until=now + 3600))

    threads = [threading.Thread(target=one) for _ in range(40)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        allowed = [a for a in results if a.allowed]
        assert len(results) == 40 and sorted(a.number for a in allowed) == [1, 2, 3, 4, 5]
        assert [a.paused_until for a in allowed] == [now + 900 if a.number == 5 else None for a in allowed]
        assert all(a.paused_until == now + 900 for a in results if not a.allowed)
        assert guard.paused_until(key, now=now + 899) == now + 900 and guard.paused_until(key, now=now + 900) is None
        # After the pause, one try, and a wrong one doubles the pause.
        again = guard.attempt(key, now=now + 900, keep_until=now + 3600)
        assert again.allowed and again.number == 6 and again.paused_until == now + 900 + 1800
        guard.forget(key)
        assert guard.attempt(key, now=now, keep_until=now + 3600) == type(again)(True, 1, None)
    finally:
        redis.close()


def test_the_arithmetic_of_docs_security_md() -> None:
    default = Allowance(tries=10, first_pause=15 * 60)
    hours = 3600
    assert most_tries(9 * hours, default) == 15  # default check-in window: 30 min + 8 h + 30 min
    assert most_tries(24 * hours, default) == 16
    assert most_tries(36 * hours, default) == 17  # every setting at its maximum: 24 h + 8 h + 4 h
    assert most_tries(365 * 24 * hours, default) == 380  # then one try a day
    assert [default.pause_after(n) / 60 for n in (9, 10, 11, 16, 17, 1000)] == [0, 15, 30, 960, 1440, 1440]
