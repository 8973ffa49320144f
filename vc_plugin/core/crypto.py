"""Cryptographic primitives: master keys, sealed payloads, access codes, opaque tokens.

Personal fields are protected by envelope encryption: each organisation has its own data
key (see :mod:`vc_plugin.core.data_keys`), wrapped by the operator's master keys from
``VC_ENCRYPTION_KEYS``. Rotating a master key only re-wraps small data keys; destroying an
organisation's data key makes all of its fields unreadable at once (crypto-shredding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidKey, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

NONCE_BYTES = 12


class DecryptionError(ValueError):
    """Ciphertext was tampered with, belongs to another record, or its key is gone."""


class KeyNotAvailable(DecryptionError):
    """The key that encrypted a value is not configured (rotated out, or destroyed)."""


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))


def generate_master_key() -> str:
    """A new master key in the form ``VC_ENCRYPTION_KEYS`` expects."""
    return b64e(AESGCM.generate_key(bit_length=256))


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-256-GCM with a random nonce; the nonce travels in front of the ciphertext."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def unseal(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
    except (InvalidTag, ValueError):
        raise DecryptionError("ciphertext failed authentication (tampered, wrong key or wrong record)") from None


def key_id(key: bytes) -> str:
    """Short, stable identifier of a master key that reveals nothing about it."""
    return hashlib.sha256(b"vc_plugin key id" + key).hexdigest()[:12]


@dataclass(frozen=True)
class MasterKey:
    id: str
    secret: bytes


class MasterKeyring:
    """The operator's master keys, newest first: the newest seals, every one opens."""

    def __init__(self, encoded_keys: list[str]) -> None:
        if not encoded_keys:
            raise ValueError("at least one master key is required")
        self._keys = [MasterKey(key_id(raw), raw) for raw in (b64d(k) for k in encoded_keys)]
        self._by_id = {key.id: key for key in self._keys}
        self._derived: dict[tuple[str, str], bytes] = {}  # (key id, purpose) → key: a few, derived once

    @property
    def newest(self) -> MasterKey:
        return self._keys[0]

    @property
    def ids(self) -> list[str]:
        return [key.id for key in self._keys]

    def _get(self, kid: str) -> MasterKey:
        try:
            return self._by_id[kid]
        except KeyError:
            raise KeyNotAvailable(f"master key {kid} is not in VC_ENCRYPTION_KEYS") from None

    def wrap(self, data_key: bytes, context: str) -> str:
        key = self.newest
        return f"{key.id}.{b64e(seal(key.secret, data_key, context.encode()))}"

    def unwrap(self, wrapped: str, context: str) -> bytes:
        kid, _, body = wrapped.partition(".")
        return unseal(self._get(kid).secret, b64d(body), context.encode())

    def wrapped_by_newest(self, wrapped: str) -> bool:
        return wrapped.partition(".")[0] == self.newest.id

    def _purpose_key(self, key: MasterKey, purpose: str) -> bytes:
        """Derived once per key and purpose: every socket ticket is opened with it."""
        derived = self._derived.get((key.id, purpose))
        if derived is None:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
            derived = self._derived[(key.id, purpose)] = hkdf.derive(key.secret)
        return derived

    def seal_for(self, purpose: str, plaintext: bytes) -> str:
        """Encrypt a short-lived payload (a job's arguments) under a key derived for ``purpose``."""
        key = self.newest
        return f"{key.id}.{b64e(seal(self._purpose_key(key, purpose), plaintext, purpose.encode()))}"

    def open_for(self, purpose: str, token: str) -> bytes:
        kid, _, body = token.partition(".")
        try:
            raw = b64d(body)
        except ValueError:
            raise DecryptionError("sealed payload is not base64") from None
        return unseal(self._purpose_key(self._get(kid), purpose), raw, purpose.encode())


# --- access codes ---------------------------------------------------------------------------

#: Digits and capitals without the look-alikes 0/O, 1/I/L and U/V (30 symbols).
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
CODE_GROUP = 5


def code_entropy_bits() -> float:
    import math

    return CODE_LENGTH * math.log2(len(CODE_ALPHABET))


def generate_access_code() -> str:
    """A code like ``K7QM4-X9TPR`` (about 49 bits) that can be read out on the phone."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:CODE_GROUP]}-{raw[CODE_GROUP:]}"


def normalise_code(typed: str) -> str | None:
    """Uppercase, drop spaces and dashes; ``None`` when it cannot be one of our codes."""
    cleaned = "".join(ch for ch in typed.upper() if ch not in " -\t")
    if len(cleaned) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


@dataclass(frozen=True)
class ScryptCost:
    n: int = 2**14
    r: int = 8
    p: int = 1


DEFAULT_SCRYPT = ScryptCost()


def hash_code(code: str, cost: ScryptCost = DEFAULT_SCRYPT) -> str:
    """Slow, salted hash of a normalised code: ``scrypt$n$r$p$salt$digest``."""
    normalised = normalise_code(code)
    if normalised is None:
        raise ValueError("not an access code")
    salt = os.urandom(16)
    digest = Scrypt(salt=salt, length=32, n=cost.n, r=cost.r, p=cost.p).derive(normalised.encode())
    return f"scrypt${cost.n}${cost.r}${cost.p}${b64e(salt)}${b64e(digest)}"


def verify_code(typed: str, stored: str) -> bool:
    """Constant-time check of a typed code against its stored hash."""
    normalised = normalise_code(typed)
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    # Even malformed input costs one derivation, so timing does not tell the two apart.
    candidate = (normalised or "-" * CODE_LENGTH).encode()
    kdf = Scrypt(salt=b64d(salt), length=32, n=int(n), r=int(r), p=int(p))
    try:
        kdf.verify(candidate, b64d(digest))
    except InvalidKey:
        return False
    return normalised is not None


# --- opaque tokens --------------------------------------------------------------------------


def new_token(prefix: str, nbytes: int = 32) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def token_digest(token: str) -> str:
    """Tokens carry 256 bits of randomness, so a fast hash is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(token: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), digest)


def public_id(nbytes: int = 12, draw: Callable[[int], str] = secrets.token_urlsafe) -> str:
    """Identifier for URLs: unguessable, carries no meaning.

    It never begins with "-", so an operator can paste it after `flask vc export` without the
    command line taking it for an option (one id in 64 would otherwise).
    """
    while (identifier := draw(nbytes)).startswith("-"):
        pass
    return identifier
