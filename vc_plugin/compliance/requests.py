"""How requests of data subjects are answered with this installation (Art. 15, 17 and 20 GDPR):
where the export and the deletion are, what an export cannot contain, and until when there is
anything to give.
"""

from __future__ import annotations

from ..core.catalogue import gettext as _
from ..domain.subject_rights import EXPORT_FORMAT
from .data_classes import built_in, days, setting
from .document import Blank, Document, Section, Statement, Table
from .facts import Facts


def subject_requests(facts: Facts) -> Document:
    settings = facts.settings
    prefix = settings.url_prefix
    return Document(
        "subject-requests",
        _("Requests of data subjects (Art. 15, 17 and 20 GDPR)"),
        _(
            "How the organisation answers a request for access, a copy or erasure with this installation. "
            "Patients have no account: their appointment is found through the practitioner or the invitation."
        ),
        [
            Section(
                _("Where each request is answered"),
                [
                    Table(
                        [_("request"), _("what the organisation does"), _("where")],
                        [
                            [
                                _("access (Art. 15) and a copy in a machine-readable form (Art. 20)"),
                                _("export everything stored about one appointment, or about one participant"),
                                f"{_('appointment page')}: “{_('Export all data (JSON)')}”; "
                                f"GET {prefix}/api/v1/appointments/<id>/export; flask vc export <id>",
                            ],
                            [
                                _("erasure (Art. 17)"),
                                _("delete one appointment with everything in it, or one participant"),
                                f"{_('appointment page')}: “{_('Delete now with all data')}”; "
                                f"DELETE {prefix}/api/v1/appointments/<id>",
                            ],
                            [
                                _("erasure when a practitioner leaves"),
                                _("delete their account and their appointments"),
                                "flask vc remove-practitioner <id>",
                            ],
                        ],
                        source=built_in(),
                    ),
                    Statement(
                        _(
                            "Exports are JSON in the format %(format)s, with the personal fields decrypted; a "
                            "participant's export leaves out the practice's note. Each export and each deletion "
                            "leaves an audit event with ids and counts only.",
                            format=EXPORT_FORMAT,
                        ),
                        built_in(),
                    ),
                ],
            ),
            Section(
                _("What an export cannot contain"),
                [
                    Statement(
                        _(
                            "Names entered at check-in, IP addresses, audio, video, chat, files, connection set-up "
                            "data and the access code itself are not stored, so no export contains them; every "
                            "export lists them under not_stored, because absence is information too."
                        ),
                        built_in(),
                    )
                ],
            ),
            Section(
                _("Until when there is anything to give"),
                [
                    Statement(
                        _(
                            "%(period)s after an appointment's planned end, the purge has deleted it with everything "
                            "in it; after that an answer can only say that nothing is stored.",
                            period=days(settings.retention_metadata_days),
                        ),
                        setting(settings, "retention_metadata_days"),
                    ),
                    Blank(_("who answers requests, how the person is identified, and the deadline (one month)")),
                ],
            ),
        ],
    )
