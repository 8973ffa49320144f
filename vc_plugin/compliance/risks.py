"""A draft of the data-protection impact assessment (Art. 35 GDPR): the risks of video consultations
for the people in them, and the measures that answer each, with the checks that show whether the
measures are in force here. Likelihood, severity and the residual risk are the operator's to judge.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.catalogue import gettext as _
from ..domain.turn import relay_available
from .data_classes import built_in, setting
from .document import Blank, Block, Document, Requirement, Section, Statement
from .facts import Facts


@dataclass(frozen=True)
class Risk:
    title: str
    description: str
    measures: list[Block]


def _risks(facts: Facts) -> list[Risk]:
    settings = facts.settings
    found = facts.finding
    return [
        Risk(
            _("Someone listens in on the consultation"),
            _("Health matters discussed by video reach people they are not meant for."),
            [
                Requirement(_("Media go directly between the browsers, encrypted end to end."), found("peer_to_peer")),
                Requirement(_("The relay, if any, cannot read the content and needs consent."), found("relay_consent")),
                Statement(_("The server never receives audio, video, chat or files."), built_in()),
            ],
        ),
        Risk(
            _("The wrong person joins"),
            _("A forwarded or guessed link lets a stranger into a consultation."),
            [
                Statement(
                    _(
                        "A link alone is not enough: the access code is needed too, and nobody enters the call "
                        "before the practitioner admits them from the waiting room."
                    ),
                    built_in(),
                ),
                Requirement(_("Guessing codes is slowed down."), found("rate_limits")),
                Statement(
                    _(
                        "The call page asks the practitioner to confirm that everyone present was introduced; "
                        "confirmed in %(confirmed)d of %(ended)d consultations ended for everyone in the audit period.",
                        confirmed=facts.introductions_confirmed,
                        ended=facts.consultations_ended,
                    ),
                    _("measured at %(time)s", time=facts.local(facts.generated_at)),
                ),
            ],
        ),
        Risk(
            _("IP addresses reveal where a patient is"),
            _("The other side, a third party or a log learns a patient's address."),
            [
                Requirement(
                    _("Browsers contact no third party (STUN and TURN are the operator's)."), found("no_third_party")
                ),
                Statement(
                    _("vc_plugin's processes write no IP address in full into a log."), setting(settings, "log_ip_mode")
                ),
                Blank(_("the log formats of the reverse proxy, gunicorn and coturn")),
                *_relay_from_start(facts),
            ],
        ),
        Risk(
            _("Data kept longer than needed"),
            _("Appointments, names or addresses stay after the consultation and could leak later."),
            [
                Requirement(_("Appointment data at most three months."), found("metadata_retention")),
                Requirement(_("Every period within its bound."), found("retention_bounds")),
                Requirement(_("The purge runs on schedule."), found("purge")),
            ],
        ),
        Risk(
            _("A copy of the database is stolen"),
            _("A backup or a database copy reaches an attacker."),
            [
                Statement(
                    _(
                        "Notes and contact details are encrypted with a key per organisation; access codes are stored "
                        "only as slow hashes; the names patients enter are never stored in the database (those of "
                        "practitioners and staff are, unencrypted)."
                    ),
                    built_in(),
                ),
                Requirement(_("Data keys are renewed in time."), found("key_age")),
            ],
        ),
        Risk(
            _("Interception on the way"),
            _("Pages, links or session cookies are read on the network."),
            [
                Requirement(_("HTTPS only."), found("https")),
                Requirement(_("Strong TLS at the public URL."), found("tls")),
                Requirement(_("Secure session cookie."), found("cookies")),
                Requirement(_("Invitation mails over TLS."), found("mail")),
            ],
        ),
        Risk(
            _("Data leaves the EU"),
            _("Servers in a third country make the data subject to foreign access."),
            [
                Requirement(_("The servers are declared to run in the EU/EEA."), found("eu_locations")),
                Blank(_("whether the declared locations are true, backups and the mail server included")),
            ],
        ),
        Risk(
            _("A practitioner's account is taken over"),
            _("Someone signs in as a practitioner and sees appointments or joins calls."),
            [
                Requirement(_("Sign-in through the organisation's identity provider or the host."), found("sign_in")),
                Requirement(_("The service does not run in debug or testing mode."), found("production")),
                Blank(_("whether the identity provider requires a second factor")),
            ],
        ),
    ]


def _relay_from_start(facts: Facts) -> list[Block]:
    if not relay_available(facts.settings):
        return []
    return [
        Statement(
            _("Appointments can use the relay from the start, so the other side never sees the address."),
            setting(facts.settings, "turn_urls"),
        )
    ]


def impact_assessment(facts: Facts) -> Document:
    sections = [
        Section(
            _("Description of the processing"),
            [
                Statement(
                    _(
                        "Video consultations of the organisation's practitioners with patients and the people they "
                        "bring, who have no account. Health data is processed (Art. 9 GDPR); what is stored, where "
                        "and how long is listed in the record of processing activities and the deletion concept."
                    ),
                    built_in(),
                ),
                Blank(_("the scale (consultations per month) and why a consultation by video is needed")),
            ],
        ),
        Section(
            _("Necessity and proportionality"),
            [
                Statement(
                    _(
                        "Only what a consultation needs is processed: no accounts for patients, their names only in "
                        "memory or Redis with an expiry, no recordings, no content on the server, metadata deleted "
                        "on a schedule."
                    ),
                    built_in(),
                )
            ],
        ),
    ]
    for number, risk in enumerate(_risks(facts), start=1):
        sections.append(
            Section(
                _("Risk %(number)d: %(title)s", number=number, title=risk.title),
                [
                    Statement(risk.description),
                    *risk.measures,
                    Blank(
                        _("likelihood and severity before and after the measures, and whether the rest is acceptable")
                    ),
                ],
            )
        )
    sections.append(
        Section(
            _("Result"),
            [Blank(_("the conclusion, the data protection officer's opinion (Art. 35(2) GDPR) and the date"))],
        )
    )
    return Document(
        "impact-assessment",
        _("Data-protection impact assessment (Art. 35 GDPR): draft"),
        _(
            "A draft to complete: the risks for the people in a video consultation and the measures of this "
            "installation against each. A measure whose check fails is marked as an open item."
        ),
        sections,
    )
