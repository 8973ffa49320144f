"""Per-organisation data keys and the encryption of personal fields with them.

A field value looks like ``v1.<key-row-id>.<nonce+ciphertext>``. The associated data binds
it to its table, column and record, so a ciphertext copied into another record fails to
decrypt instead of showing the wrong person's data.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .clock import Clock
from .crypto import DecryptionError, KeyNotAvailable, MasterKeyring, b64d, b64e, seal, unseal
from .models import Appointment, Invitation, Organisation, OrganisationKey

FORMAT = "v1"
CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class EncryptedField:
    model: type
    attribute: str

    def context(self, record: object) -> str:
        table = self.model.__tablename__  # type: ignore[attr-defined]
        return f"{table}.{self.attribute}.{record.public_id}"  # type: ignore[attr-defined]


#: Every encrypted column. Key rotation and crypto-shredding walk this list.
ENCRYPTED_FIELDS = (
    EncryptedField(Appointment, "label_encrypted"),
    EncryptedField(Invitation, "contact_encrypted"),
)


class FieldCipher:
    """Encrypts and decrypts personal fields with the owning organisation's data key."""

    def __init__(self, session: Callable[[], Session], keyring: MasterKeyring, clock: Clock) -> None:
        self._session = session
        self._keyring = keyring
        self._clock = clock
        self._cache: dict[int, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    # --- keys --------------------------------------------------------------------------------
    def _wrap_context(self, organisation_id: int) -> str:
        return f"vc_organisation_key.{organisation_id}"

    def _current_key(self, organisation_id: int) -> OrganisationKey:
        session = self._session()
        key = session.scalars(
            select(OrganisationKey)
            .where(OrganisationKey.organisation_id == organisation_id)
            .order_by(OrganisationKey.id.desc())
            .limit(1)
        ).first()
        return key or self.new_data_key(organisation_id)

    def new_data_key(self, organisation_id: int) -> OrganisationKey:
        session = self._session()
        key = OrganisationKey(
            organisation_id=organisation_id,
            wrapped_key=self._keyring.wrap(os.urandom(32), self._wrap_context(organisation_id)),
            created_at=self._clock.now(),
        )
        session.add(key)
        session.flush()
        return key

    def _raw_key(self, key_row_id: int) -> bytes:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_row_id)
            if cached and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        row = self._session().get(OrganisationKey, key_row_id)
        if row is None:
            raise KeyNotAvailable("the organisation's data key was destroyed; this value cannot be read")
        raw = self._keyring.unwrap(row.wrapped_key, self._wrap_context(row.organisation_id))
        with self._lock:
            self._cache[key_row_id] = (now, raw)
        return raw

    def forget_cached_keys(self) -> None:
        with self._lock:
            self._cache.clear()

    # --- fields -------------------------------------------------------------------------------
    def encrypt(self, organisation_id: int, context: str, plaintext: str) -> str:
        key = self._current_key(organisation_id)
        sealed = seal(self._raw_key(key.id), plaintext.encode("utf-8"), context.encode())
        return f"{FORMAT}.{key.id}.{b64e(sealed)}"

    def decrypt(self, context: str, value: str) -> str:
        try:
            version, key_row, body = value.split(".", 2)
            key_row_id = int(key_row)
            sealed = b64d(body)
        except ValueError:
            raise DecryptionError("not an encrypted value of vc_plugin") from None
        if version != FORMAT:
            raise DecryptionError(f"unknown encryption format {version!r}")
        return unseal(self._raw_key(key_row_id), sealed, context.encode()).decode("utf-8")

    def encrypt_field(self, field: EncryptedField, record: object, organisation_id: int, plaintext: str | None) -> None:
        value = None if plaintext is None else self.encrypt(organisation_id, field.context(record), plaintext)
        setattr(record, field.attribute, value)

    def decrypt_field(self, field: EncryptedField, record: object) -> str | None:
        value = getattr(record, field.attribute)
        return None if value is None else self.decrypt(field.context(record), value)

    # --- rotation and shredding -------------------------------------------------------------------
    def rewrap_data_keys(self) -> int:
        """Re-wrap every data key with the newest master key; returns how many changed."""
        session = self._session()
        changed = 0
        for row in session.scalars(select(OrganisationKey)):
            if self._keyring.wrapped_by_newest(row.wrapped_key):
                continue
            context = self._wrap_context(row.organisation_id)
            row.wrapped_key = self._keyring.wrap(self._keyring.unwrap(row.wrapped_key, context), context)
            changed += 1
        session.flush()
        return changed

    def rotate_data_keys(self, batch_size: int = 500) -> int:
        """Give every organisation a fresh data key and re-encrypt its fields; returns fields re-encrypted."""
        session = self._session()
        reencrypted = 0
        for organisation_id in session.scalars(select(Organisation.id)).all():
            old_keys = session.scalars(
                select(OrganisationKey).where(OrganisationKey.organisation_id == organisation_id)
            ).all()
            new_key = self.new_data_key(organisation_id)
            for field, record in self._encrypted_records(session, organisation_id, batch_size):
                plaintext = self.decrypt_field(field, record)
                sealed = seal(self._raw_key(new_key.id), plaintext.encode("utf-8"), field.context(record).encode())
                setattr(record, field.attribute, f"{FORMAT}.{new_key.id}.{b64e(sealed)}")
                reencrypted += 1
            session.flush()
            for key in old_keys:
                session.delete(key)
            session.flush()
        self.forget_cached_keys()
        return reencrypted

    def shred(self, organisation_id: int) -> int:
        """Destroy an organisation's data keys: its encrypted fields become unreadable for good."""
        session = self._session()
        keys = session.scalars(select(OrganisationKey).where(OrganisationKey.organisation_id == organisation_id)).all()
        for key in keys:
            session.delete(key)
        session.flush()
        self.forget_cached_keys()
        return len(keys)

    def _encrypted_records(
        self, session: Session, organisation_id: int, batch_size: int
    ) -> Iterator[tuple[EncryptedField, object]]:
        queries = {
            Appointment: select(Appointment).where(Appointment.organisation_id == organisation_id),
            Invitation: select(Invitation)
            .join(Appointment, Invitation.appointment_id == Appointment.id)
            .where(Appointment.organisation_id == organisation_id),
        }
        for field in ENCRYPTED_FIELDS:
            column = getattr(field.model, field.attribute)
            last_id = 0
            while True:
                page = session.scalars(
                    queries[field.model]
                    .where(column.is_not(None), field.model.id > last_id)  # type: ignore[attr-defined]
                    .order_by(field.model.id)  # type: ignore[attr-defined]
                    .limit(batch_size)
                ).all()
                if not page:
                    break
                for record in page:
                    yield field, record
                last_id = page[-1].id  # type: ignore[attr-defined]
