"""The bus channels that sockets listen on, one function each, so every publisher names them alike.

* ``m:<appointment>:<member>`` – one member's connection(s) (relayed SDP, "admitted", "replaced", …)
* ``r:<appointment>`` – everybody in a room ("peer-joined", "ended", …)
* ``q:p:<practitioner>`` and ``q:o:<organisation>`` – dashboards (queue changes)

A message starts with ``R`` (relay: forward as it is) or ``E`` (event: the receiving
connection updates its own state, then forwards it).
"""

from __future__ import annotations

from .server_messages import ServerMessage, encode


def member_topic(appointment: str, member: str) -> str:
    return f"m:{appointment}:{member}"


def room_topic(appointment: str) -> str:
    return f"r:{appointment}"


def practitioner_topic(practitioner: str) -> str:
    return f"q:p:{practitioner}"


def organisation_topic(organisation: int) -> str:
    return f"q:o:{organisation}"


def dashboard_topics(practitioner: str, organisation: int) -> tuple[str, str]:
    """The practitioner's own dashboard and the organisation's shared queue."""
    return practitioner_topic(practitioner), organisation_topic(organisation)


def event_message(message: ServerMessage) -> str:
    return "E" + encode(message)
