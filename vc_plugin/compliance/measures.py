"""The technical and organisational measures (Art. 32 GDPR) and the statement on cryptography
(for the certifier: what protects the content, the transport and the stored fields).
"""

from __future__ import annotations

from ..core.catalogue import gettext as _
from ..core.crypto import DEFAULT_SCRYPT
from ..domain.turn import relay_available
from .data_classes import built_in, hours, minutes, setting
from .document import Blank, Document, Requirement, Section, Statement, Table
from .facts import Facts


def technical_measures(facts: Facts) -> Document:
    settings = facts.settings
    sign_in = facts.finding("sign_in")
    return Document(
        "technical-measures",
        _("Technical and organisational measures (Art. 32 GDPR)"),
        _(
            "The measures the software takes, each with where it comes from or the check that proves it in this "
            "installation; the organisational measures are the organisation's."
        ),
        [
            Section(
                _("Confidentiality: who gets in"),
                [
                    Requirement(_("Practitioners and staff sign in before they see anything."), sign_in),
                    *_session_limits(facts),
                    Statement(
                        _(
                            "Patients have no account: they enter the access code from their invitation and wait "
                            "until the practitioner admits them. Staff organise but cannot join a call."
                        ),
                        built_in(),
                    ),
                    Requirement(
                        _("Guessing access codes is slowed down per client and invitation."),
                        facts.finding("rate_limits"),
                    ),
                    Blank(_("who is given which role, and how leavers are removed (flask vc remove-practitioner)")),
                ],
            ),
            Section(
                _("Confidentiality: encryption"),
                [
                    Requirement(_("Pages and signalling travel only over HTTPS."), facts.finding("https")),
                    Requirement(
                        _(
                            "The public URL negotiates TLS 1.3, or TLS 1.2 with forward secrecy and AEAD, with a "
                            "current client."
                        ),
                        facts.finding("tls"),
                    ),
                    Requirement(_("The session cookie is Secure and HttpOnly."), facts.finding("cookies")),
                    Requirement(_("Audio and video go directly between the browsers."), facts.finding("peer_to_peer")),
                    Requirement(
                        _("A relay is used only after the participant agreed."), facts.finding("relay_consent")
                    ),
                    Requirement(_("Invitation mails leave over TLS."), facts.finding("mail")),
                    Requirement(_("Data keys are renewed in time."), facts.finding("key_age")),
                    Statement(_("Details: see the statement on cryptography.")),
                ],
            ),
            Section(
                _("Data minimisation and storage limitation"),
                [
                    Requirement(
                        _("Appointment data is deleted at most three months after the appointment."),
                        facts.finding("metadata_retention"),
                    ),
                    Requirement(_("No period exceeds its documented bound."), facts.finding("retention_bounds")),
                    Requirement(_("The purge runs on schedule."), facts.finding("purge")),
                    Statement(
                        _(
                            "vc_plugin's processes remove (or shorten) IP addresses in every log record they "
                            "format, whoever wrote it."
                        ),
                        setting(settings, "log_ip_mode"),
                    ),
                    Blank(
                        _(
                            "the log formats of gunicorn (with vc_plugin's PrivacyLogger), the reverse proxy and "
                            "coturn, which the software cannot see"
                        )
                    ),
                    Statement(
                        _(
                            "Names entered at check-in live only in memory or Redis, with an expiry, never in the "
                            "database."
                        ),
                        built_in(),
                    ),
                    Blank(_("whether Redis writes snapshots to disk (RDB, AOF), and how long they are kept")),
                ],
            ),
            Section(
                _("Integrity"),
                [
                    Statement(
                        _(
                            "Every stored encrypted field is bound to its table, column and record, so a copied "
                            "value fails to decrypt instead of showing someone else's data; forms are protected "
                            "against cross-site requests; pages allow no inline script (Content-Security-Policy)."
                        ),
                        built_in(),
                    ),
                    Statement(
                        _(
                            "Actions are recorded as audit events by internal ids and counts, without names, and "
                            "kept for the audit period."
                        ),
                        setting(settings, "retention_audit_days"),
                    ),
                ],
            ),
            Section(
                _("Availability, resilience and recovery"),
                [
                    Blank(_("backups of the database (how often, where, encrypted, how long kept) and restore tests")),
                    Blank(_("monitoring, e.g. flask vc probe holding a test call through the public URL")),
                    Statement(
                        _(
                            "A consultation survives a restart of a server process: browsers reconnect and the "
                            "call continues directly between them."
                        ),
                        built_in(),
                    ),
                ],
            ),
            Section(
                _("Regular testing and evaluation"),
                [
                    Statement(
                        _(
                            "flask vc check tests %(count)d requirements against the running configuration; its "
                            "results at the time of this pack are in the document on checks.",
                            count=len(facts.findings),
                        ),
                        _("measured at %(time)s", time=facts.local(facts.generated_at)),
                    ),
                    Blank(_("how often the checks are run and who reviews the results")),
                ],
            ),
            Section(
                _("Organisational measures"),
                [
                    Blank(_("training of practitioners and staff, and the instruction to introduce everyone present")),
                    Blank(_("the procedure for data breaches (Art. 33, 34 GDPR)")),
                    Blank(_("how requests for access and erasure are answered (flask vc export, deletion pages)")),
                ],
            ),
        ],
    )


def crypto_statement(facts: Facts) -> Document:
    tls = facts.finding("tls")
    return Document(
        "cryptography",
        _("Statement on cryptography"),
        _(
            "Which algorithms protect what, in this installation. Algorithms chosen by the browsers are named as "
            "the WebRTC standards require them; everything else is read from the software and its configuration."
        ),
        [
            Section(
                _("Audio, video, chat and files (end to end)"),
                [
                    Statement(
                        _(
                            "The browsers encrypt media with SRTP and chat and files with SCTP over DTLS; the keys are "
                            "agreed between the two browsers with DTLS 1.2 or newer and ECDHE, as WebRTC requires "
                            "(RFC 8827). The server passes on the certificate fingerprints in the session "
                            "descriptions but never holds a key. The fingerprints are not compared out of band, so "
                            "this protection assumes that the signalling server is not manipulated."
                        ),
                        built_in(),
                    ),
                    Requirement(_("No relay sees the content unencrypted."), facts.finding("relay_consent")),
                ],
            ),
            Section(
                _("Transport between browser and server"),
                [
                    Requirement(_("TLS as measured at the public URL."), tls),
                    Blank(_("the TLS configuration of the reverse proxy (protocols, cipher suites), if not measured")),
                ],
            ),
            Section(
                _("Stored fields"),
                [
                    Table(
                        [_("what"), _("algorithm"), _("key")],
                        [
                            [
                                ", ".join(facts.sealed_fields),
                                "AES-256-GCM, 96-bit random nonce, record-bound associated data",
                                _("one data key per organisation"),
                            ],
                            [
                                _("data keys"),
                                "AES-256-GCM (key wrapping)",
                                _("%(count)d master key(s) from VC_ENCRYPTION_KEYS", count=facts.master_keys),
                            ],
                            [
                                _("access codes"),
                                f"scrypt (N={DEFAULT_SCRYPT.n}, r={DEFAULT_SCRYPT.r}, p={DEFAULT_SCRYPT.p}), "
                                "16-byte salt",
                                "–",
                            ],
                            [
                                _("invitation jobs"),
                                "AES-256-GCM",
                                _("a key derived from the newest master key (HKDF-SHA256)"),
                            ],
                            [_("session cookie"), facts.cookie_digest, "SECRET_KEY"],
                            *_turn_row(facts),
                        ],
                        source=built_in(),
                    ),
                    Requirement(_("Data keys are renewed in time."), facts.finding("key_age")),
                ],
            ),
            Section(
                _("Keys"),
                [
                    Blank(
                        _(
                            "where the master keys and SECRET_KEY are kept, who can read them, and how they are "
                            "backed up"
                        )
                    ),
                    Statement(
                        _(
                            "Destroying an organisation's data key (flask vc shred-organisation) makes its encrypted "
                            "fields unreadable in the database at once. Backups taken before stay readable with the "
                            "master keys until they are deleted, or until the master key that wrapped the data key is "
                            "removed after flask vc rotate-keys."
                        ),
                        built_in(),
                    ),
                ],
            ),
        ],
    )


def _session_limits(facts: Facts) -> list[Statement | Blank]:
    """Our limits hold only for our own sign-in; a host that signs people in keeps its own."""
    settings = facts.settings
    if not facts.own_sign_in:
        return [Blank(_("the host application's session limits (it signs practitioners in)"))]
    return [
        Statement(
            _(
                "Sessions end after %(idle)s without activity and %(absolute)s after sign-in.",
                idle=minutes(settings.session_idle_minutes),
                absolute=hours(settings.session_absolute_hours),
            ),
            f"{setting(settings, 'session_idle_minutes')}, {setting(settings, 'session_absolute_hours')}",
        )
    ]


def _turn_row(facts: Facts) -> list[list[str]]:
    settings = facts.settings
    if not relay_available(settings):
        return []
    period = minutes(settings.turn_credential_ttl_seconds // 60)
    return [
        [
            _("TURN credentials"),
            "HMAC-SHA1 (coturn's REST API scheme)",
            _("VC_TURN_SECRET, valid at most %(period)s", period=period),
        ]
    ]
