"""The messages of one signalling session, in our protocol and in PeerJS's, of equal size on the wire.

A session is what two browsers exchange to set up a call: an offer (2.5 KB of SDP), an answer
(2.3 KB) and ICE candidates both ways (270 B each, the smallest a PeerJS candidate message
gets). Each message carries a sequence number inside the SDP or candidate text, where neither
server looks, so the receiver matches it to its scheduled send time with one ``str.find`` (the
load client must not be the bottleneck).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

OFFER_BYTES = 2500
ANSWER_BYTES = 2300
CANDIDATE_BYTES = 270
MARK = "x-seq:"
SLOT = "@" * 10  # replaced by the zero-padded sequence number

#: One session: (kind, sent by the pair's first peer?) in the order they are sent.
SESSION: tuple[tuple[str, bool], ...] = (
    ("offer", True),
    ("answer", False),
    ("candidate", True),
    ("candidate", False),
    ("candidate", True),
    ("candidate", False),
    ("candidate", True),
    ("candidate", False),
)
KINDS = ("offer", "answer", "candidate")
TARGET = {"offer": OFFER_BYTES, "answer": ANSWER_BYTES, "candidate": CANDIDATE_BYTES}

_SDP_HEAD = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n"
    "a=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n"
    f"a=x-bench {MARK}{SLOT}\r\n"
)
_SDP_LINE = "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
_CANDIDATE = f"candidate:842163049 1 udp 2122260223 192.0.2.7 46154 typ host {MARK}{SLOT}"


def _sdp(pad: int) -> str:
    """The SDP head plus exactly ``pad`` more characters (codec lines, then one filler line)."""
    body = _SDP_HEAD
    while len(body) + len(_SDP_LINE) + 10 <= len(_SDP_HEAD) + pad:
        body += _SDP_LINE
    rest = len(_SDP_HEAD) + pad - len(body)
    return body + ("a=x-pad:" + "x" * (rest - 10) + "\r\n" if rest >= 10 else "")


def _candidate(pad: int) -> dict[str, object]:
    return {
        "candidate": _CANDIDATE + " x" * (pad // 2) + ("x" if pad % 2 else ""),
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "u7Fq",
    }


def ours(kind: str, to: str, pad: int) -> str:
    if kind == "candidate":
        body: dict[str, object] = {"type": "candidate", "to": to, "candidate": _candidate(pad)}
    else:
        body = {"type": kind, "to": to, "sdp": _sdp(pad)}
    return json.dumps(body, separators=(",", ":"))


def peerjs(kind: str, to: str, pad: int) -> str:
    """What the PeerJS client library sends (``OFFER``/``ANSWER``/``CANDIDATE`` with ``dst`` and ``payload``)."""
    connection = {"type": "media", "connectionId": "mc_3k9v0ab7xqz"}
    if kind == "candidate":
        payload: dict[str, object] = {"candidate": _candidate(pad), **connection}
    else:
        payload = {"sdp": {"type": kind, "sdp": _sdp(pad)}, **connection, "browser": "chrome"}
        if kind == "offer":
            payload["metadata"] = None
    return json.dumps({"type": kind.upper(), "payload": payload, "dst": to}, separators=(",", ":"))


@dataclass(frozen=True)
class Template:
    """A message split around its sequence slot: ``head + "%010d" % seq + tail``."""

    head: str
    tail: str

    def render(self, seq: int) -> str:
        return f"{self.head}{seq:010d}{self.tail}"

    @property
    def size(self) -> int:
        return len(self.head) + 10 + len(self.tail)


def template(protocol: str, kind: str, to: str) -> Template:
    """The message of ``kind`` to ``to``, padded to the same wire size in both protocols."""
    build = ours if protocol == "ours" else peerjs
    pad = 0
    for _ in range(8):  # JSON escapes the SDP's line breaks, so converge on the size in a few steps
        size = len(build(kind, to, pad).encode())
        if size == TARGET[kind]:
            break
        pad = max(0, pad + TARGET[kind] - size)
    head, tail = build(kind, to, pad).split(SLOT)
    return Template(head, tail)


def sequence_of(raw: str) -> int:
    """The sequence number in a received message, or -1 (not one of ours: pong, queue update, …)."""
    i = raw.find(MARK)
    if i < 0:
        return -1
    try:
        return int(raw[i + 6 : i + 16])
    except ValueError:
        return -1
