"""Test data made fast: practitioners, appointments in bulk, and the cookies browsers would hold.

Planning through the domain hashes every access code with scrypt (tens of milliseconds each)
and checking in costs another hash, so for thousands of sockets the bench writes appointments
with one ``INSERT … SELECT generate_series`` and signs participant passes itself, with the
bench app's secret, exactly as check-in would put them into the session cookie. Pages and
check-in themselves are measured on their own (page weight, call set-up).
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, text

from tests.support.signal_client import session_cookie
from vc_plugin.adapters.presence import CheckInRecord, PresenceStore
from vc_plugin.core.models import Practitioner
from vc_plugin.domain.check_in import code_tag

_batch = itertools.count(1)


@dataclass(frozen=True)
class Seat:
    """One participant's way into one appointment: what the room socket needs."""

    appointment: str
    invitation: str
    participant: str
    practitioner: str
    cookie: str


def practitioner_cookie(person: Practitioner) -> str:
    now = time.time()
    return session_cookie(
        {"vc_user": {"pid": person.public_id, "role": person.role.value, "iat": now, "seen": now, "via": "oidc"}}
    )


def provision(state: Any, count: int, organisation: str = "praxis-nord") -> list[Practitioner]:
    from vc_plugin.core.models import Role

    people = [
        state.directory.provision(
            issuer="bench",
            subject=f"bench-{organisation}-{i}-{secrets.token_hex(3)}",
            display_name=f"Dr. Bench {i}",
            role=Role.PRACTITIONER,
            organisation_slug=organisation,
        )
        for i in range(count)
    ]
    state.db.session.commit()
    return people


def seats(database_url: str, presence: PresenceStore, practitioners: list[Practitioner], count: int) -> list[Seat]:
    """``count`` open appointments (one invitation each), spread over ``practitioners`` in turn.

    Each seat is checked in as check-in would do it: the pass (ids only) in the cookie, the
    name in presence as the invitation's current check-in.
    """
    batch = f"{next(_batch):03d}{secrets.token_hex(3)}"
    by_index = {i: p for i, p in enumerate(practitioners)}
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO vc_appointment (public_id, organisation_id, practitioner_id, starts_at, ends_at, kind,
                                            state, relay_only, created_at, delete_after)
                SELECT 'ba' || :batch || lpad(i::text, 6, '0'), :org, (:ids)[1 + i % :n],
                       now() + interval '5 minutes', now() + interval '65 minutes', 'single', 'planned', false,
                       now(), now() + interval '91 days'
                FROM generate_series(0, :count - 1) AS i
                """
            ),
            {
                "batch": batch,
                "org": practitioners[0].organisation_id,
                "ids": [p.id for p in practitioners],
                "n": len(practitioners),
                "count": count,
            },
        )
        connection.execute(
            text(
                """
                INSERT INTO vc_invitation (public_id, appointment_id, kind, language, code_hash, code_by_sms,
                                           delivery, failed_code_attempts, code_locks, created_at)
                SELECT 'bi' || substr(public_id, 3), id, 'patient', 'de', 'bench', false, 'not_sent', 0, 0, now()
                FROM vc_appointment WHERE public_id LIKE 'ba' || :batch || '%'
                """
            ),
            {"batch": batch},
        )
    engine.dispose()
    expires = time.time() + 95 * 60
    result = []
    for i in range(count):
        appointment = f"ba{batch}{i:06d}"
        practitioner = by_index[i % len(practitioners)]
        participant = secrets.token_urlsafe(9)
        pass_ = {
            "invitation": "bi" + appointment[2:],
            "appointment": appointment,
            "practitioner": practitioner.public_id,
            "participant": participant,
            "kind": "patient",
            "language": "de",
            "expires_at": expires,
        }
        record = CheckInRecord(pass_["invitation"], participant, f"Patient {i}", expires, code_tag("bench"))
        presence.hold_check_in(record)
        result.append(
            Seat(
                appointment,
                pass_["invitation"],
                participant,
                practitioner.public_id,
                session_cookie({"vc_pass": pass_}),
            )
        )
    return result


def ask_ticket(app: Any, cookie: str, path: str, remote: str) -> Any:
    """``POST /vc/socket-ticket`` through ``app``'s own view, with the page's cookie and CSRF token."""
    from tests.support.signal_client import with_csrf

    header, token = with_csrf(cookie)
    client = app.test_client()
    for pair in header.split("; "):
        name, _, value = pair.partition("=")
        client.set_cookie(name, value, path="/vc")
    return client.post(
        "/vc/socket-ticket",
        json={"socket": path},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
        environ_base={"REMOTE_ADDR": remote},
    )


class TicketDesk:
    """Socket tickets for seats, from the app's own view (``POST /vc/socket-ticket``), as a page asks
    for them before it opens its socket. An app of this process with the servers' database, Redis
    and keys issues them, each seat from an address of its own (the join limit counts per client);
    what that costs the app is measured by ``bench.connect_cost``, not by the socket server's ramp."""

    def __init__(self, database_url: str, redis_url: str, public_url: str) -> None:
        from tests.support.hosts import make_host_app

        self.host = make_host_app(database_url, VC_REDIS_URL=redis_url, VC_PUBLIC_URL=public_url)

    def ticket(self, seat: Seat, index: int) -> str:
        remote = f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"
        response = ask_ticket(self.host.app, seat.cookie, f"/vc/ws/room/{seat.appointment}", remote)
        if response.status_code != 200:
            raise RuntimeError(
                f"no ticket for seat {index}: {response.status_code} {response.get_data(as_text=True)[:200]}"
            )
        return str(response.json["ticket"])

    def close(self) -> None:
        self.host.close()
