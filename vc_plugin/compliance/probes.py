"""Measurements over the network for the checks: what the public URL's TLS offers, and whether the
TURN relay refuses someone without credentials.

They observe; they change nothing and send no personal data. A host that cannot be reached is
reported as such (the check then says it checked nothing), never as passed.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

TIMEOUT_SECONDS = 5.0
#: TLS 1.2 cipher suites BSI TR-02102-2 accepts have forward secrecy and an AEAD mode.
_FORWARD_SECRET = ("ECDHE", "DHE")
_AEAD = ("GCM", "CHACHA20", "CCM")


class Unreachable(Exception):
    """Nothing answered: no conclusion can be drawn."""


@dataclass(frozen=True)
class TlsOffer:
    """What a TLS handshake with our default (certificate-verifying) client settled on."""

    protocol: str
    cipher: str
    certificate_days_left: int

    @property
    def strong(self) -> bool:
        if self.protocol == "TLSv1.3":
            return True
        if self.protocol != "TLSv1.2":
            return False
        return any(part in self.cipher for part in _FORWARD_SECRET) and any(mode in self.cipher for mode in _AEAD)


class TlsRefused(Exception):
    """A server answered but no trustworthy TLS connection came about; the message says why."""


def tls_offer(host: str, port: int, now: datetime, *, timeout: float = TIMEOUT_SECONDS) -> TlsOffer:
    """Handshake as a browser would (system trust store, host name checked, TLS 1.2 at least)."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        raise Unreachable(f"{host}:{port}: {type(error).__name__}") from None
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            certificate = tls.getpeercert() or {}
            cipher = tls.cipher()
            protocol = tls.version() or "?"
    except TimeoutError:
        raise Unreachable(f"{host}:{port}: no answer to the handshake") from None
    except ssl.SSLCertVerificationError as error:
        raise TlsRefused(f"certificate not trusted ({error.verify_message})") from None
    except (ssl.SSLError, OSError) as error:
        raise TlsRefused(
            f"no TLS handshake ({type(error).__name__}: {getattr(error, 'reason', None) or error})"
        ) from None
    finally:
        raw.close()
    not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(certificate.get("notAfter"))), UTC)
    return TlsOffer(protocol, cipher[0] if cipher else "?", (not_after - now).days)


# --- TURN -------------------------------------------------------------------------------------------

_ALLOCATE_REQUEST = 0x0003
_ALLOCATE_SUCCESS = 0x0103
_ALLOCATE_ERROR = 0x0113
_MAGIC_COOKIE = 0x2112A442
_REQUESTED_TRANSPORT = 0x0019
_ERROR_CODE = 0x0009
_UDP = 17


@dataclass(frozen=True)
class TurnAnswer:
    """How a TURN server answered an Allocate request that carried no credentials."""

    allocated: bool
    error_code: int | None


def _turn_address(url: str) -> tuple[str, int, str]:
    """Host, port and transport of ``turn:host:port?transport=udp`` (``turns:`` is TLS over TCP)."""
    scheme, rest = url.split(":", 1)
    parts = urlsplit("//" + rest)
    transport = parse_qs(parts.query).get("transport", ["udp"])[0].lower()
    tls = scheme.lower() == "turns"
    port = parts.port or (5349 if tls else 3478)
    return parts.hostname or "", port, "tls" if tls else transport


def unauthenticated_allocate(url: str, *, timeout: float = TIMEOUT_SECONDS) -> TurnAnswer:
    """Ask for a relay without credentials (RFC 8656 Allocate); a sound server refuses with 401."""
    host, port, transport = _turn_address(url)
    transaction = os.urandom(12)
    attribute = struct.pack("!HHB3x", _REQUESTED_TRANSPORT, 4, _UDP)
    request = struct.pack("!HHI", _ALLOCATE_REQUEST, len(attribute), _MAGIC_COOKIE) + transaction + attribute
    try:
        if transport == "udp":
            family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            with socket.socket(family, kind, protocol) as udp:
                udp.settimeout(timeout)
                udp.sendto(request, address)
                answer = udp.recv(2048)
        else:
            with socket.create_connection((host, port), timeout=timeout) as stream:
                if transport == "tls":
                    # Whether the relay's certificate is trusted is not this probe's question.
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    with context.wrap_socket(stream, server_hostname=host) as tls:
                        answer = _exchange(tls, request)
                else:
                    answer = _exchange(stream, request)
    except OSError as error:
        raise Unreachable(f"{host}:{port}/{transport}: {type(error).__name__}") from None
    return _read_answer(answer, transaction)


def _exchange(stream: socket.socket, request: bytes) -> bytes:
    stream.sendall(request)
    header = _read_exactly(stream, 20)
    length = struct.unpack("!H", header[2:4])[0]
    return header + _read_exactly(stream, length)


def _read_exactly(stream: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("closed mid-answer")
        data += chunk
    return data


def _read_answer(answer: bytes, transaction: bytes) -> TurnAnswer:
    if len(answer) < 20 or answer[8:20] != transaction:
        raise Unreachable("the answer is not STUN, or not to our request")
    kind, length = struct.unpack("!HH", answer[:4])
    if kind == _ALLOCATE_SUCCESS:
        return TurnAnswer(allocated=True, error_code=None)
    code = None
    offset = 20
    while offset + 4 <= min(len(answer), 20 + length):
        attribute, size = struct.unpack("!HH", answer[offset : offset + 4])
        if attribute == _ERROR_CODE and size >= 4 and offset + 8 <= len(answer):
            error_class, number = answer[offset + 6] & 0x07, answer[offset + 7]
            code = error_class * 100 + number
        offset += 4 + size + (-size % 4)
    return TurnAnswer(allocated=False, error_code=code if kind == _ALLOCATE_ERROR else None)
