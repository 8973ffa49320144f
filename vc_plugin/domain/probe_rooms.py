"""Probe rooms: ephemeral rooms in presence only, for the operator probe."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..adapters.presence import PresenceStore, Room

#: A probe room lives this long at most, and its id starts with the prefix (never an appointment's).
PROBE_SECONDS = 120
PROBE_PREFIX = "probe-"
SALT = "vc_plugin probe member"


@dataclass(frozen=True)
class ProbeGrant:
    room: str
    tokens: list[str]


def open_probe_room(presence: PresenceStore, now: float, *, secret_key: str) -> ProbeGrant:
    room_id = PROBE_PREFIX + secrets.token_urlsafe(9)
    presence.open_room(
        Room(
            appointment=room_id,
            organisation=0,
            practitioner="probe",
            starts_at=now,
            ends_at=now + PROBE_SECONDS,
            expires_at=now + PROBE_SECONDS,
        )
    )
    serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
    tokens = [serializer.dumps({"room": room_id, "member": f"probe{n}-{secrets.token_hex(4)}"}) for n in (1, 2)]
    return ProbeGrant(room_id, tokens)


def probe_member(secret_key: str, token: str, room: str) -> str | None:
    """The member id a probe token grants in ``room``, or None when forged, expired or for another room."""
    try:
        data = URLSafeTimedSerializer(secret_key, salt=SALT).loads(token, max_age=PROBE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("room") != room:
        return None
    member = data.get("member")
    return member if isinstance(member, str) else None
