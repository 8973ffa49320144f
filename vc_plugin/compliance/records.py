"""The record of processing activities (Art. 30 GDPR) and the list of processors and other
services the installation talks to (for the agreements under Art. 28 GDPR).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..core.catalogue import gettext as _
from ..domain.turn import ice_host
from .data_classes import built_in, data_classes, setting
from .document import Blank, Document, Requirement, Section, Statement, Table
from .facts import Facts


def records_of_processing(facts: Facts) -> Document:
    settings = facts.settings
    controller: Statement | Blank = (
        Statement(_("Controller: %(name)s.", name=settings.operator_name), setting(settings, "operator_name"))
        if settings.operator_name
        else Blank(_("the controller's name and address (and set VC_OPERATOR_NAME)"))
    )
    classes = data_classes(settings)
    return Document(
        "records-of-processing",
        _("Record of processing activities (Art. 30 GDPR): video consultations"),
        _(
            "One processing activity: video consultations between the organisation's practitioners and the "
            "people they invite. The entries below come from the installation's configuration."
        ),
        [
            Section(
                _("Controller and data protection officer"),
                [
                    controller,
                    Blank(_("the contact details of the data protection officer")),
                    Blank(_("a joint controller or a representative, if there is one")),
                ],
            ),
            Section(
                _("Purposes and legal basis"),
                [
                    Statement(
                        _(
                            "Planning appointments, inviting participants, admitting them from a waiting room and "
                            "holding the consultation by video, with chat and file exchange between the browsers."
                        ),
                        built_in(),
                    ),
                    Blank(
                        _(
                            "the legal basis for each purpose (for treatment usually Art. 9(2)(h) GDPR with the "
                            "national law on health care); ask your data protection officer"
                        )
                    ),
                ],
            ),
            Section(
                _("Categories of data subjects"),
                [
                    Statement(
                        _(
                            "Patients and the people they bring (relatives, interpreters, other participants), "
                            "who never have an account; practitioners and staff of the organisation, who sign in."
                        ),
                        built_in(),
                    )
                ],
            ),
            Section(
                _("Categories of personal data and time limits for erasure"),
                [
                    Table(
                        [_("data"), _("where"), _("kept"), _("source")],
                        [[c.name, c.where, c.kept, c.source] for c in classes if c.personal],
                    ),
                    Statement(_("How each kind is deleted and how the deletion is proven: see the deletion concept.")),
                ],
            ),
            Section(
                _("Recipients"),
                [
                    Statement(
                        _(
                            "The participants of one consultation see each other's entered names and pictures; "
                            "people waiting see only their own place in the queue."
                        ),
                        built_in(),
                    ),
                    Statement(_("Processors and other services: see the list of processors.")),
                ],
            ),
            Section(
                _("Transfers to third countries"),
                [
                    Requirement(
                        _("The servers of the service are declared to run in the EU or the EEA."),
                        facts.finding("eu_locations"),
                    ),
                    Blank(_("where the database, backups and the mail server run, if not covered above")),
                ],
            ),
            Section(
                _("Technical and organisational measures"),
                [Statement(_("See the document on technical and organisational measures (Art. 32 GDPR)."))],
            ),
        ],
    )


def processors(facts: Facts) -> Document:
    settings = facts.settings
    declared: list[Statement | Blank | Table] = (
        [
            Table(
                [_("processor"), _("purpose"), _("location")],
                [[p.name, p.purpose, p.location] for p in settings.processors],
                source="VC_PROCESSORS",
            )
        ]
        if settings.processors
        else [Blank(_("the processors (hosting, mail delivery, TURN, support); declare them in VC_PROCESSORS"))]
    )
    services = _services(facts)
    return Document(
        "processors",
        _("Processors and services contacted (Art. 28 GDPR)"),
        _(
            "Who processes personal data on the organisation's behalf, as declared, and which servers this "
            "installation actually talks to. Each service run by another company needs an agreement under "
            "Art. 28 GDPR."
        ),
        [
            Section(_("Declared processors"), declared),
            Section(
                _("Servers this installation talks to"),
                [
                    Table([_("service"), _("server"), _("source")], services),
                    Blank(_("for each of these run by another company: the processor and the date of the agreement")),
                ],
            ),
            Section(
                _("The software itself"),
                [
                    Statement(
                        _(
                            "vc_plugin is software the organisation runs itself; its makers receive no data and "
                            "are not a processor. Pages load nothing from other hosts."
                        ),
                        built_in(),
                    ),
                    Requirement(_("No third party receives requests from the pages."), facts.finding("no_third_party")),
                ],
            ),
        ],
    )


def _services(facts: Facts) -> list[list[str]]:
    settings = facts.settings
    not_set = _("none configured")
    rows = [
        [_("database"), facts.database, "SQLALCHEMY_DATABASE_URI"],
        [_("Redis (presence, bus, jobs)"), facts.redis or not_set, "VC_REDIS_URL"],
        [_("mail server"), facts.mail_server or not_set, "VC_SMTP_URL"],
        [
            _("STUN (browsers ask it for their public address)"),
            ", ".join(dict.fromkeys(ice_host(u) for u in settings.stun_urls)) or not_set,
            "VC_STUN_URLS",
        ],
        [
            _("TURN relay (only after consent)"),
            ", ".join(dict.fromkeys(ice_host(u) for u in settings.turn_urls)) or not_set,
            "VC_TURN_URLS",
        ],
    ]
    if settings.oidc_issuer or settings.oidc_metadata_url:
        provider = settings.oidc_issuer or settings.oidc_metadata_url or ""
        rows.append([_("sign-in (OpenID Connect provider)"), provider, "VC_OIDC_ISSUER, VC_OIDC_METADATA_URL"])
    if settings.sms_sender:
        rows.append([_("SMS sending (receives phone numbers and access codes)"), settings.sms_sender, "VC_SMS_SENDER"])
    if settings.webhook_url:
        host = urlsplit(settings.webhook_url).hostname or settings.webhook_url
        rows.append([_("webhooks (events with ids, no names)"), host, "VC_WEBHOOK_URL"])
    return rows
