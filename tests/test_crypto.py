"""Field encryption with rotation and shredding; access codes; sealed job payloads."""

from __future__ import annotations

import math

import pytest

from tests.support.hosts import TEST_KEYS
from vc_plugin.core.crypto import (
    CODE_ALPHABET,
    DecryptionError,
    KeyNotAvailable,
    MasterKeyring,
    ScryptCost,
    code_entropy_bits,
    generate_access_code,
    hash_code,
    normalise_code,
    public_id,
    verify_code,
)
from vc_plugin.core.data_keys import FieldCipher
from vc_plugin.core.models import Appointment, Organisation


def _organisation(app) -> Organisation:
    state = app.extensions["vc_plugin"]
    return state.directory.organisation("praxis")


def test_fields_round_trip_and_are_bound_to_their_record(app):
    state = app.extensions["vc_plugin"]
    organisation = _organisation(app)
    token = state.cipher.encrypt(organisation.id, "vc_appointment.label_encrypted.A", "Frau Müller")
    assert "Müller" not in token and token.startswith("v1.")
    assert state.cipher.decrypt("vc_appointment.label_encrypted.A", token) == "Frau Müller"
    with pytest.raises(DecryptionError):
        state.cipher.decrypt("vc_appointment.label_encrypted.B", token)


def test_tampering_raises_instead_of_returning_empty(app):
    state = app.extensions["vc_plugin"]
    organisation = _organisation(app)
    token = state.cipher.encrypt(organisation.id, "ctx", "secret")
    body = token.rsplit(".", 1)
    flipped = body[1][:-2] + ("A" if body[1][-2] != "A" else "B") + body[1][-1]
    with pytest.raises(DecryptionError, match="failed authentication"):
        state.cipher.decrypt("ctx", f"{body[0]}.{flipped}")
    with pytest.raises(DecryptionError, match="not an encrypted value"):
        state.cipher.decrypt("ctx", "garbage")


def test_master_key_rotation(app):
    state = app.extensions["vc_plugin"]
    organisation = _organisation(app)
    token = state.cipher.encrypt(organisation.id, "ctx", "Herr Schmidt")
    state.db.session.commit()

    # The operator puts a new key first; the old one still opens the existing data keys.
    rotated = MasterKeyring([TEST_KEYS[1], TEST_KEYS[0]])
    cipher = FieldCipher(lambda: state.db.session, rotated, state.clock)
    assert cipher.decrypt("ctx", token) == "Herr Schmidt"
    assert cipher.rewrap_data_keys() == 1
    assert cipher.rewrap_data_keys() == 0
    state.db.session.commit()

    # After re-wrapping, the old master key can go.
    only_new = FieldCipher(lambda: state.db.session, MasterKeyring([TEST_KEYS[1]]), state.clock)
    assert only_new.decrypt("ctx", token) == "Herr Schmidt"
    with pytest.raises(KeyNotAvailable):
        FieldCipher(lambda: state.db.session, MasterKeyring([TEST_KEYS[0]]), state.clock).decrypt("ctx", token)


def test_data_key_rotation_reencrypts_fields(app):
    state = app.extensions["vc_plugin"]
    organisation = _organisation(app)
    me = state.directory.provision(
        issuer="t", subject="s", display_name="Dr. A", role="practitioner", organisation_slug="praxis"
    )
    appointment = Appointment(
        public_id="apt1",
        organisation_id=organisation.id,
        practitioner_id=me.id,
        starts_at=state.clock.now(),
        ends_at=state.clock.now(),
        kind="single",
        state="planned",
        created_at=state.clock.now(),
        delete_after=state.clock.now(),
    )
    state.db.session.add(appointment)
    from vc_plugin.core.data_keys import ENCRYPTED_FIELDS

    label = ENCRYPTED_FIELDS[0]
    state.cipher.encrypt_field(label, appointment, organisation.id, "Patient 7")
    before = appointment.label_encrypted
    state.db.session.commit()
    assert state.cipher.rotate_data_keys() == 1
    state.db.session.commit()
    assert appointment.label_encrypted != before
    assert state.cipher.decrypt_field(label, appointment) == "Patient 7"
    with pytest.raises(KeyNotAvailable):
        state.cipher.decrypt(label.context(appointment), before)


def test_crypto_shredding_makes_fields_unreadable(app):
    state = app.extensions["vc_plugin"]
    organisation = _organisation(app)
    token = state.cipher.encrypt(organisation.id, "ctx", "Frau Müller")
    state.db.session.commit()
    assert state.cipher.shred(organisation.id) == 1
    state.db.session.commit()
    with pytest.raises(KeyNotAvailable, match="destroyed"):
        state.cipher.decrypt("ctx", token)


def test_sealed_job_payloads():
    ring = MasterKeyring(TEST_KEYS)
    sealed = ring.seal_for("invitation", b'{"email": "a@example.org"}')
    assert b"example" not in sealed.encode()
    assert ring.open_for("invitation", sealed) == b'{"email": "a@example.org"}'
    with pytest.raises(DecryptionError):
        ring.open_for("other-purpose", sealed)
    other = ring.seal_for("other-purpose", b"x")  # both purposes' keys derived (and kept) now
    assert ring.open_for("other-purpose", other) == b"x"
    with pytest.raises(DecryptionError):
        ring.open_for("other-purpose", sealed)
    with pytest.raises(DecryptionError):
        ring.open_for("invitation", other)
    with pytest.raises(KeyNotAvailable):
        MasterKeyring([TEST_KEYS[1]]).open_for("invitation", sealed)


def test_access_codes_are_unambiguous_and_long_enough():
    codes = {generate_access_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 11 and code[5] == "-"
        assert set(code.replace("-", "")) <= set(CODE_ALPHABET)
    assert not set("01OIL") & set(CODE_ALPHABET)
    assert code_entropy_bits() == pytest.approx(10 * math.log2(30))
    assert code_entropy_bits() > 49


def test_typed_codes_are_normalised():
    code = generate_access_code()
    assert normalise_code(code.lower().replace("-", " ")) == code.replace("-", "")
    assert normalise_code("ABC") is None
    assert normalise_code("OOOOO-OOOOO") is None


def test_code_hashes_are_slow_salted_and_verified():
    cheap = ScryptCost(n=2**10)
    code = generate_access_code()
    first, second = hash_code(code, cheap), hash_code(code, cheap)
    assert first != second  # salted
    assert code.replace("-", "") not in first
    assert verify_code(code, first) and verify_code(code.lower(), second)
    assert not verify_code(generate_access_code(), first)
    assert not verify_code("not a code", first)
    assert not verify_code(code, "md5$abc")
    assert hash_code(code).startswith("scrypt$16384$8$1$")


def test_public_ids_never_look_like_a_command_line_option():
    draws = iter(["-starts-with-a-dash", "-again", "Kx9-plain"])
    assert public_id(draw=lambda nbytes: next(draws)) == "Kx9-plain"
    assert len(public_id()) == 16 and not public_id().startswith("-")
