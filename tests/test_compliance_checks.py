"""The checks the compliance pack rests on, against real servers: a TLS server with certificates of
our own CA, Debian's coturn (with and without authentication), SMTP URLs, and data keys that age
on the host's clock."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.coturn import SECRET, Coturn
from tests.support.planning import plan_soon
from tests.support.processes import free_port
from vc_plugin.adapters.mail import SmtpMailer
from vc_plugin.compliance.checks import (
    Status,
    data_key_age,
    invitation_mail,
    public_url_tls,
    relay_only_with_consent,
)
from vc_plugin.core.catalogue import language
from vc_plugin.core.config import settings_from

#: OpenSSL checks validity against the real time, so the test certificates span it widely; the
#: check itself is asked at fixed moments before their end, so no figure depends on the date.
ISSUED = datetime(2020, 1, 1, tzinfo=UTC)
EXPIRES = datetime(2100, 1, 1, tzinfo=UTC)
NOW = EXPIRES - timedelta(days=90)


# --- a TLS server with our own CA ----------------------------------------------------------------


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer, *, ca: bool):  # type: ignore[no-untyped-def]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ISSUED)
        .not_valid_after(EXPIRES)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(signer, hashes.SHA256())


class TlsServer:
    """Accepts TLS handshakes on loopback with a certificate for ``localhost`` valid until ``EXPIRES``."""

    def __init__(self, work: Path, *, tls: bool = True) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vc test CA")])
        ca = _certificate("vc test CA", ca_key, ca_name, ca_key, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _certificate("localhost", key, ca_name, ca_key, ca=False)
        self.ca_file = work / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        chain, key_file = work / "leaf.pem", work / "leaf.key"
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) if tls else None
        if self.context is not None:
            self.context.load_cert_chain(chain, key_file)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                try:
                    if self.context is None:
                        connection.sendall(b"220 not TLS at all\r\n")
                    else:
                        with self.context.wrap_socket(connection, server_side=True) as tls:
                            tls.recv(1)
                except (OSError, ssl.SSLError):
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsServer]:
    server = TlsServer(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
    yield server
    server.close()


def _public(port: int):  # type: ignore[no-untyped-def]
    return settings_from({"public_url": f"https://localhost:{port}/"})


def test_tls_of_the_public_url_is_measured(tls_server):
    finding = public_url_tls(_public(tls_server.port), NOW)
    assert finding.status is Status.PASS, finding
    assert "TLSv1.3" in finding.reason and "90 more days" in finding.reason


def test_an_untrusted_certificate_fails(tls_server, monkeypatch, tmp_path):
    monkeypatch.delenv("SSL_CERT_FILE")
    finding = public_url_tls(_public(tls_server.port), NOW)
    assert finding.status is Status.FAIL and "certificate not trusted" in finding.reason, finding


def test_a_certificate_about_to_expire_fails(tls_server):
    finding = public_url_tls(_public(tls_server.port), EXPIRES - timedelta(days=5))
    assert "5 more days" in finding.reason, finding
    assert finding.status is Status.FAIL and "renew the certificate" in finding.reason, finding


def test_a_server_without_tls_fails_and_nothing_listening_is_not_a_pass(tmp_path):
    plain = TlsServer(tmp_path, tls=False)
    try:
        finding = public_url_tls(_public(plain.port), NOW)
    finally:
        plain.close()
    assert finding.status is Status.FAIL and "no TLS handshake" in finding.reason, finding

    nobody = public_url_tls(_public(free_port()), NOW)
    assert nobody.status is Status.WARN and "nothing was checked" in nobody.reason, nobody
    plain_http = public_url_tls(settings_from({"public_url": "http://localhost/"}), NOW)
    assert plain_http.status is Status.FAIL


# --- the relay refuses strangers ------------------------------------------------------------------


def _relay(url: str, secret: str | None = SECRET):  # type: ignore[no-untyped-def]
    return settings_from({"turn_urls": [url], "turn_secret": secret})


def test_a_relay_with_credentials_only_passes(tmp_path):
    coturn = Coturn(tmp_path).start()
    try:
        udp = relay_only_with_consent(_relay(coturn.url))
        tcp = relay_only_with_consent(_relay(f"turn:127.0.0.1:{coturn.port}?transport=tcp"))
    finally:
        coturn.stop()
    assert udp.status is Status.PASS and "refused a request without credentials (401)" in udp.reason, udp
    assert tcp.status is Status.PASS, tcp


def test_a_relay_that_serves_anyone_fails(tmp_path):
    careless = Coturn(tmp_path, authenticate=False).start()
    try:
        finding = relay_only_with_consent(_relay(careless.url))
    finally:
        careless.stop()
    assert finding.status is Status.FAIL and "gave a relay to a request without credentials" in finding.reason


def test_a_relay_that_does_not_answer_is_not_verified_and_one_without_secret_fails():
    silent = relay_only_with_consent(_relay(f"turn:127.0.0.1:{free_port()}?transport=tcp"))
    assert silent.status is Status.WARN and "was not checked" in silent.reason, silent
    unusable = relay_only_with_consent(_relay("turn:127.0.0.1:3478", secret=None))
    assert unusable.status is Status.FAIL and "VC_TURN_SECRET" in unusable.reason


# --- mail over TLS --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("smtp://mail.praxis.example:587?starttls=true", Status.PASS, "STARTTLS"),
        ("smtps://mail.praxis.example", Status.PASS, "implicit TLS"),
        ("smtp://mail.praxis.example:25", Status.FAIL, "travel unencrypted"),
        ("smtp://127.0.0.1:25", Status.WARN, "on this machine"),
    ],
)
def test_invitation_mail_needs_tls_beyond_this_machine(url, status, words):
    finding = invitation_mail(SimpleNamespace(mailer=SmtpMailer(url)))  # type: ignore[arg-type]
    assert finding.status is status and words in finding.reason, finding


# --- data keys age on the host's clock ------------------------------------------------------------


def test_data_keys_older_than_the_limit_fail_until_rotated(host, state, people, clock):
    with language("en"):
        assert data_key_age(state).reason == "no organisation has a data key yet"
        plan_soon(host, people, email="key.age@example.org", store_contact=True)
        state.db.session.commit()
        assert data_key_age(state).status is Status.PASS

        clock.advance(timedelta(days=state.settings.key_max_age_days + 1))
        stale = data_key_age(state)
        assert stale.status is Status.FAIL and "rotate-keys --data-keys" in stale.reason, stale

        state.cipher.rotate_data_keys()
        state.db.session.commit()
        fresh = data_key_age(state)
        assert fresh.status is Status.PASS and "at most 0 days old" in fresh.reason, fresh
    with language("de"):
        assert "höchstens 0 Tage alt" in data_key_age(state).reason
