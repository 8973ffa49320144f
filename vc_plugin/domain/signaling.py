"""The signalling protocol: what clients may send, checked before anything else happens.

Every message is one JSON object with a ``type``. Unknown types, missing or extra fields,
oversized values and malformed JSON are answered with an ``error`` message carrying a
stable ``code``; nothing of the offending message is logged. SDP and ICE candidates are
relayed as they are and never stored. ``docs/signaling.md`` describes the protocol.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from msgspec import UNSET
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, TypeAdapter, ValidationError

from .server_messages import Error
from .server_messages import encode as encode_message

#: Participant, appointment and practitioner ids: URL-safe, short.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
MAX_SDP = 60_000
MAX_CANDIDATE = 1_024
MAX_NOTICE = 500


class ProtocolError(Exception):
    """Answered with ``{"type": "error", "code": …}``; the connection stays open unless said otherwise."""

    def __init__(self, code: str, message: str, *, close: bool = False, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close
        self.ref = ref

    def as_message(self) -> str:
        return encode_message(Error(code=self.code, message=self.message, ref=self.ref or UNSET))


class Incoming(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hello(Incoming):
    type: Literal["hello"]
    resume: str | None = Field(None, max_length=64)


class Ping(Incoming):
    type: Literal["ping"]
    t: float | None = Field(None, allow_inf_nan=False)  # echoed in "pong": NaN and Infinity are not JSON


class Leave(Incoming):
    type: Literal["leave"]


class Negotiation(Incoming):
    """Media signalling names the sender's peer connection (``pc``) and, once known, the receiver's
    (``to_pc``): after a reload or a fresh peer connection, what belonged to the old one is dropped."""

    pc: Id | None = None
    to_pc: Id | None = None


class Offer(Negotiation):
    type: Literal["offer"]
    to: Id
    sdp: str = Field(max_length=MAX_SDP)


class Answer(Negotiation):
    type: Literal["answer"]
    to: Id
    sdp: str = Field(max_length=MAX_SDP)


class CandidateBody(Incoming):
    candidate: str = Field(max_length=MAX_CANDIDATE)
    sdpMid: str | None = Field(None, max_length=64)
    sdpMLineIndex: int | None = Field(None, ge=0, le=64)
    usernameFragment: str | None = Field(None, max_length=256)


class Candidate(Negotiation):
    type: Literal["candidate"]
    to: Id
    candidate: CandidateBody | None  # None: end of candidates


class IceRestart(Incoming):
    type: Literal["ice-restart"]
    to: Id


class RelayRequest(Incoming):
    type: Literal["relay-request"]
    consent: StrictBool  # JSON true or false only: "true", 1 or "yes" are not an answer


class Admit(Incoming):
    type: Literal["admit"]
    appointment: Id
    participant: Id


class Decline(Incoming):
    type: Literal["decline"]
    appointment: Id
    participant: Id


class Notice(Incoming):
    type: Literal["notice"]
    appointment: Id
    text: str = Field(max_length=MAX_NOTICE)


class End(Incoming):
    type: Literal["end"]
    appointment: Id


class Handover(Incoming):
    type: Literal["handover"]
    appointment: Id
    practitioner: Id


#: What practitioners and staff may tell the waiting room.
StaffCommand = Admit | Decline | Notice | End | Handover

Message = Annotated[
    Hello
    | Ping
    | Leave
    | Offer
    | Answer
    | Candidate
    | IceRestart
    | RelayRequest
    | Admit
    | Decline
    | Notice
    | End
    | Handover,
    Field(discriminator="type"),
]
KNOWN_TYPES = frozenset(
    {
        "hello",
        "ping",
        "leave",
        "offer",
        "answer",
        "candidate",
        "ice-restart",
        "relay-request",
        "admit",
        "decline",
        "notice",
        "end",
        "handover",
    }
)
RELAYED = frozenset({"offer", "answer", "candidate", "ice-restart"})
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Message)


def parse(raw: str | bytes, max_bytes: int) -> Incoming:
    """Validate one client message or raise :class:`ProtocolError` with a code the client can act on."""
    if isinstance(raw, bytes):
        raise ProtocolError("malformed", "send text frames with JSON")
    if len(raw) > max_bytes:
        raise ProtocolError("too_large", f"messages may have at most {max_bytes} bytes", close=True)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed", "not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("malformed", "a message is a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in KNOWN_TYPES:
        raise ProtocolError("unknown_type", "unknown message type")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in item["loc"][1:]) or "type" for item in error.errors()})
        raise ProtocolError("invalid", f"invalid fields: {', '.join(fields)[:200]}", ref=str(kind)) from None


def encode(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def relayed(kind: str, sender: str, message: Incoming) -> str:
    """The message a peer receives: the sender's fields, ``to`` replaced by ``from``."""
    body = message.model_dump(exclude={"to"}, exclude_none=False)
    body["type"] = kind
    body["from"] = sender
    return encode(body)
