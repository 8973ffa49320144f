"""The checklist for KBV Anlage 31b (the agreement on the technical requirements for video
consultations, §§ 2, 2a and 5): each requirement with how this installation meets it, or the open
item that stands in the way. The certificates themselves are the operator's to name.
"""

from __future__ import annotations

from ..core.catalogue import gettext as _
from .checks import Finding, Status
from .data_classes import built_in, setting
from .document import Blank, Document, Requirement, Section, Statement
from .facts import Facts


def _german(facts: Facts) -> Finding:
    """Pages and terms must be available in German: the language is offered, and the terms page answers."""
    languages = facts.settings.languages
    item = _("German offered")
    if "de" not in languages:
        return Finding(
            "german", item, Status.FAIL, _("VC_LANGUAGES = %(languages)s lacks de", languages=", ".join(languages))
        )
    terms = facts.finding("terms")
    if terms.status is not Status.PASS:
        return terms
    return Finding(
        "german",
        item,
        Status.PASS,
        _("VC_LANGUAGES = %(languages)s; %(terms)s", languages=", ".join(languages), terms=terms.reason),
    )


def anlage_31b(facts: Facts) -> Document:
    found = facts.finding
    settings = facts.settings
    measured = _("measured at %(time)s", time=facts.local(facts.generated_at))
    return Document(
        "anlage-31b",
        _("Checklist for Anlage 31b BMV-Ä (video consultations)"),
        _(
            "The requirements on a video service (§ 5) and the certificates it needs (§§ 2, 2a), each with its "
            "evidence in this installation. A requirement whose check fails is an open item, never ticked."
        ),
        [
            Section(
                _("Certificates (§§ 2, 2a)"),
                [
                    Blank(_("the IT-security certificate: issuing body, number, date, scope")),
                    Blank(_("the data-protection certificate: issuing body, number, date, scope")),
                    Statement(
                        _(
                            "The documents of this pack (data flows, cryptography, deletion concept with proof, "
                            "checks) are the installation's evidence for the auditors."
                        ),
                        built_in(),
                    ),
                ],
            ),
            Section(
                _("Requirements on the video service (§ 5)"),
                [
                    Requirement(
                        _("The connection is peer-to-peer, without a server in the content's path."),
                        found("peer_to_peer"),
                    ),
                    Requirement(
                        _("A relay, where the network needs one, carries only encrypted content, after consent."),
                        found("relay_consent"),
                    ),
                    Statement(
                        _(
                            "Content (audio, video, chat, files) is encrypted end to end and is neither stored nor "
                            "viewable by the server or the operator."
                        ),
                        built_in(),
                    ),
                    Requirement(
                        _("Metadata is deleted at the latest three months after the consultation."),
                        found("metadata_retention"),
                    ),
                    Requirement(_("Deletion happens on schedule."), found("purge")),
                    Statement(_("Patients need no registration: a link and an access code are enough."), built_in()),
                    Statement(
                        _(
                            "Staff only organise (plan appointments, invite participants); only the appointment's "
                            "practitioner admits, and only practitioners and invited participants join a call."
                        ),
                        built_in(),
                    ),
                    Statement(
                        _(
                            "The consultation is undisturbed: nobody enters without being admitted, people waiting see "
                            "only their own place in the queue, and no notification sounds play during a call (only "
                            "the speaker test a person starts)."
                        ),
                        built_in(),
                    ),
                    Statement(
                        _(
                            "Quality adapts to the connection: the browsers' congestion control lowers resolution and "
                            "frame rate, and participants see the connection quality."
                        ),
                        built_in(),
                    ),
                    Requirement(
                        _("German is offered, and the page at VC_TERMS_URL answers without signing in."),
                        _german(facts),
                    ),
                    Blank(_("that the page at VC_TERMS_URL holds the terms of use in German")),
                    Requirement(_("The servers are declared to run in the EU/EEA."), found("eu_locations")),
                    Statement(_("No advertising, no tracking, no analytics."), built_in()),
                ],
            ),
            Section(
                _("Everyone present is introduced"),
                [
                    Statement(
                        _(
                            "The call page offers the practitioner a confirmation that everyone present on both "
                            "sides has been introduced; it is recorded without names."
                        ),
                        built_in(),
                    ),
                    Statement(
                        _(
                            "Confirmed in %(confirmed)d of %(ended)d consultations the practitioner ended for everyone "
                            "within the last %(days)d days.",
                            confirmed=facts.introductions_confirmed,
                            ended=facts.consultations_ended,
                            days=settings.retention_audit_days,
                        ),
                        f"{measured}; {setting(settings, 'retention_audit_days')}",
                    ),
                ],
            ),
        ],
    )
