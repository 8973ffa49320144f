"""The signalling protocol: what clients may send, checked before anything else happens.

Every message is one JSON object with a ``type``. Unknown types, missing or extra fields,
oversized values and malformed JSON are answered with an ``error`` message carrying a
stable ``code``; nothing of the offending message is logged. SDP and ICE candidates are
relayed as they are and never stored. ``docs/signaling.md`` describes the protocol.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta

from .server_messages import Error
from .server_messages import encode as encode_message
from .waiting_time import MAX_LATE_MINUTES

#: Participant, appointment and practitioner ids: URL-safe, short.
Id = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
MAX_SDP = 60_000
MAX_CANDIDATE = 1_024
MAX_NOTICE = 500
#: A finite number: NaN and Infinity are not JSON, and would be echoed in "pong".
Finite = Annotated[float, Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]


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


class Incoming(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    """A client message; its ``type`` is the tag that chose the class."""

    @property
    def type(self) -> str:
        return self.__struct_config__.tag  # type: ignore[return-value]


class DevicesChecked(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the patient's device check found: shown to the practitioner beside the waiting person."""

    camera: bool
    microphone: bool


class Hello(Incoming, tag="hello"):
    resume: Annotated[str, Meta(max_length=64)] | None = None
    devices: DevicesChecked | None = None  # participants only; ignored from staff


class Ping(Incoming, tag="ping"):
    t: Finite | None = None  # echoed in "pong"


class Leave(Incoming, tag="leave"):
    pass


class Negotiation(Incoming):
    """Media signalling names the sender's peer connection (``pc``) and, once known, the receiver's
    (``to_pc``): after a reload or a fresh peer connection, what belonged to the old one is dropped."""

    pc: Id | None = None
    to_pc: Id | None = None


class Offer(Negotiation, tag="offer", kw_only=True):
    to: Id
    sdp: Annotated[str, Meta(max_length=MAX_SDP)]


class Answer(Negotiation, tag="answer", kw_only=True):
    to: Id
    sdp: Annotated[str, Meta(max_length=MAX_SDP)]


class CandidateBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    candidate: Annotated[str, Meta(max_length=MAX_CANDIDATE)]
    sdpMid: Annotated[str, Meta(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Meta(ge=0, le=64)] | None = None
    usernameFragment: Annotated[str, Meta(max_length=256)] | None = None


class Candidate(Negotiation, tag="candidate", kw_only=True):
    to: Id
    candidate: CandidateBody | None  # None: end of candidates


class IceRestart(Incoming, tag="ice-restart"):
    to: Id


class RelayRequest(Incoming, tag="relay-request"):
    consent: bool  # JSON true or false only: "true", 1 or "yes" are not an answer


class Admit(Incoming, tag="admit"):
    appointment: Id
    participant: Id


class Decline(Incoming, tag="decline"):
    appointment: Id
    participant: Id


class Notice(Incoming, tag="notice"):
    appointment: Id
    text: Annotated[str, Meta(max_length=MAX_NOTICE)]


class SendBack(Incoming, tag="send-back"):
    """Back from the call to the waiting room, e.g. while the practitioner talks to a relative alone."""

    appointment: Id
    participant: Id


class End(Incoming, tag="end"):
    appointment: Id


class Handover(Incoming, tag="handover"):
    appointment: Id
    practitioner: Id


class RunningLate(Incoming, tag="running-late"):
    """A practitioner tells all their waiting rooms how late they run (0: on time again)."""

    minutes: Annotated[int, Meta(ge=0, le=MAX_LATE_MINUTES)]


#: What practitioners and staff may tell the waiting room.
StaffCommand = Admit | Decline | SendBack | Notice | End | Handover | RunningLate

Message = (
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
    | SendBack
    | Notice
    | End
    | Handover
    | RunningLate
)
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
        "send-back",
        "notice",
        "end",
        "handover",
        "running-late",
    }
)
RELAYED = frozenset({"offer", "answer", "candidate", "ice-restart"})
_decoder = msgspec.json.Decoder(Message)
_encoder = msgspec.json.Encoder()
_FIELD = re.compile(r"field `([^`]*)`")
_PATH = re.compile(r"- at `\$\.?([^`]*)`")


def parse(raw: str | bytes, max_bytes: int) -> Incoming:
    """Validate one client message or raise :class:`ProtocolError` with a code the client can act on."""
    if isinstance(raw, bytes):
        raise ProtocolError("malformed", "send text frames with JSON")
    if len(raw) > max_bytes:
        raise ProtocolError("too_large", f"messages may have at most {max_bytes} bytes", close=True)
    try:
        return _decoder.decode(raw)  # the common case: valid, in one pass
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _refusal(raw)


def _refusal(raw: str) -> Incoming:
    """Why a message was refused, found out slowly: only bad messages come here."""
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
        message = msgspec.convert(data, Message)  # NaN and Infinity, which Python's JSON reads
        _encoder.encode(message)  # an escaped lone surrogate ("\\ud800") reads as text, but goes nowhere
    except msgspec.ValidationError as error:
        raise ProtocolError("invalid", f"invalid fields: {_where(str(error))[:200]}", ref=kind) from None
    except UnicodeEncodeError:
        raise ProtocolError("malformed", "text with a lone surrogate, which is not Unicode") from None
    return message


def _where(problem: str) -> str:
    """The field a validation problem names: ``sdp``, ``candidate.sdpMid``, or an unknown field's name."""
    path = _PATH.search(problem)
    field = _FIELD.search(problem)
    parts = [p for p in (path.group(1) if path else "", field.group(1) if field else "") if p]
    # A field's name is the client's own text, lone surrogates and all: said back only as Unicode.
    return ".".join(parts).encode("utf-8", "replace").decode() or "type"


def encode(body: dict[str, Any]) -> str:
    return _encoder.encode(body).decode()


def relayed(kind: str, sender: str, message: Incoming) -> str:
    """The message a peer receives: the sender's fields, ``to`` replaced by ``from``."""
    body = msgspec.to_builtins(message)
    body.pop("to", None)
    body["type"] = kind
    body["from"] = sender
    return encode(body)
