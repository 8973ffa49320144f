"""The deletion concept: per kind of data where it lives, how long, how it is deleted and how that
is proven; and the proof itself, the purge's own records of its last runs, with late runs flagged.
"""

from __future__ import annotations

from datetime import timedelta

from ..core.catalogue import gettext as _
from ..core.catalogue import lazy_gettext, ngettext
from .data_classes import data_classes, days, hours, minutes, setting
from .document import Document, Requirement, Section, Statement, Table
from .facts import Facts
from .purge_history import PurgeRun

#: The purge's counters, in the order of ``PurgeReport``, and what a reader calls them.
COUNTER_LABELS = {
    "appointments": lazy_gettext("appointments"),
    "invitations": lazy_gettext("invitations"),
    "consents": lazy_gettext("consent records"),
    "audit_events": lazy_gettext("audit events"),
    "outbox_jobs": lazy_gettext("waiting jobs"),
    "failed_jobs": lazy_gettext("failed jobs"),
    "presence": lazy_gettext("presence entries"),
    "orphaned_keys": lazy_gettext("keys without expiry"),
}


def deletion_concept(facts: Facts) -> Document:
    settings = facts.settings
    measured = _("measured at %(time)s", time=facts.local(facts.generated_at))
    scheduler = (
        _(
            "rq cron vc_plugin.cron enqueues it for the workers (it reads VC_PURGE_INTERVAL_MINUTES from its own "
            "environment, which must match)"
        )
        if settings.redis_url
        else _("a timer in the app process runs it")
    )
    return Document(
        "deletion-concept",
        _("Deletion concept and proof of deletion"),
        _(
            "For each kind of data: where it is kept, for how long, how it is deleted, and how the deletion is "
            "proven. The proof is the purge's own record of each run: when, and how many of each kind, no contents."
        ),
        [
            Section(
                _("Per kind of data"),
                [
                    Table(
                        [_("data"), _("where"), _("kept"), _("how deleted"), _("how proven"), _("source")],
                        [[c.name, c.where, c.kept, c.deletion, c.proof, c.source] for c in data_classes(settings)],
                    )
                ],
            ),
            Section(
                _("How the purge runs"),
                [
                    Statement(
                        _(
                            "The purge runs every %(period)s; %(scheduler)s. It deletes in batches and records one "
                            "audit event per run with the counts; on PostgreSQL several workers may run it at once.",
                            period=minutes(settings.purge_interval_minutes),
                            scheduler=scheduler,
                        ),
                        f"{setting(settings, 'purge_interval_minutes')}, VC_REDIS_URL",
                    ),
                ],
            ),
            Section(_("Proof of deletion: the last runs"), _proof(facts, measured)),
            Section(_("Overdue right now"), _pending(facts, measured)),
            Section(
                _("Deletion on request"),
                [
                    Statement(
                        _(
                            "An appointment, a participant or a practitioner who leaves can be deleted at once from "
                            "the pages, the JSON API or the command line; each deletion leaves an audit event with "
                            "ids and counts only."
                        ),
                        setting(settings, "retention_audit_days"),
                    )
                ],
            ),
        ],
    )


def _pending(facts: Facts, measured: str) -> list[Statement | Table]:
    if facts.pending is None:
        return [Statement(_("Not measured: the dry run of the purge failed (is Redis reachable?)."), measured)]
    counts = facts.pending.as_dict()
    # Presence goes by expiry; a dry run does not count it.
    cells = [str(counts[name]) if name != "presence" else _("not counted") for name in COUNTER_LABELS]
    return [
        Statement(_("What a purge would delete at this moment (this happens at the next run):"), measured),
        Table([str(label) for label in COUNTER_LABELS.values()], [cells]),
    ]


def _proof(facts: Facts, measured: str) -> list[Statement | Requirement | Table]:
    verdict = Requirement(_("The purge runs on schedule."), facts.finding("purge"))
    history = facts.purges
    if not history.runs:
        return [Statement(_("No purge run is recorded within the audit period."), measured), verdict]
    headers = [_("run"), _("since the run before"), *(str(label) for label in COUNTER_LABELS.values())]
    listed = Statement(
        ngettext(
            "%(num)d run is recorded within the audit period; listed are the newest and every late one.",
            "%(num)d runs are recorded within the audit period; listed are the newest and every late one.",
            len(history.runs),
        ),
        measured,
    )
    return [
        listed,
        Table(
            headers,
            [_row(facts, run) for run in history.listed],
            source=_("audit events “retention.purged”, %(measured)s", measured=measured),
        ),
        verdict,
    ]


def _row(facts: Facts, run: PurgeRun) -> list[str]:
    gap = "–" if run.gap is None else duration(run.gap)
    if run.late:
        gap = _("%(gap)s (late)", gap=gap)
    return [facts.local(run.at), gap, *(str(run.counts[name]) for name in COUNTER_LABELS)]


def duration(span: timedelta) -> str:
    """Minutes up to two hours, then hours up to two days, then days."""
    total = int(span.total_seconds() // 60)
    if total < 120:
        return minutes(total)
    if total < 48 * 60:
        return hours(total // 60)
    return days(total // (24 * 60))
