"""The deletion concept: per kind of data where it lives, how long, how it is deleted and how that
is proven; and the proof itself, the purge's own records of its last runs, with late runs flagged.
"""

from __future__ import annotations

from ..core.catalogue import gettext as _
from ..core.catalogue import lazy_gettext
from .checks import Finding, Status
from .data_classes import data_classes, minutes, setting
from .document import Document, Requirement, Section, Statement, Table
from .facts import Facts, PurgeRun

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


def on_schedule(facts: Facts) -> Finding:
    """Measured from the purge's records: the newest run is recent and no gap between runs is too long."""
    item = _("purge on schedule")
    late = [run for run in facts.purge_runs if run.late]
    limit = minutes(int(2 * facts.purge_interval.total_seconds() // 60))
    if facts.purge_overdue:
        reason = _("no purge run in the last %(limit)s", limit=limit)
        return Finding("purge_on_schedule", item, Status.FAIL, reason)
    if late:
        reason = _(
            "%(count)d of the listed runs came more than %(limit)s after the one before",
            count=len(late),
            limit=limit,
        )
        return Finding("purge_on_schedule", item, Status.FAIL, reason)
    reason = _(
        "%(count)d runs listed, each within %(limit)s of the one before", count=len(facts.purge_runs), limit=limit
    )
    return Finding("purge_on_schedule", item, Status.PASS, reason)


def deletion_concept(facts: Facts) -> Document:
    settings = facts.settings
    measured = _("measured at %(time)s", time=facts.local(facts.generated_at))
    scheduler = (
        _("rq cron vc_plugin.cron enqueues it for the workers")
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
                            "The purge runs every %(period)s; %(scheduler)s. It deletes in batches, so several "
                            "workers may run it at once, and records one audit event per run with the counts.",
                            period=minutes(settings.purge_interval_minutes),
                            scheduler=scheduler,
                        ),
                        f"{setting(settings, 'purge_interval_minutes')}, VC_REDIS_URL",
                    ),
                    Requirement(_("The purge has run recently."), facts.finding("purge")),
                ],
            ),
            Section(_("Proof of deletion: the last runs"), _proof(facts, measured)),
            Section(
                _("Overdue right now"),
                [
                    Statement(_("What a purge would delete at this moment (it waits for the next run):"), measured),
                    Table(
                        [str(label) for label in COUNTER_LABELS.values()],
                        [[str(count) for count in facts.pending.as_dict().values()]],
                    ),
                ],
            ),
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


def _proof(facts: Facts, measured: str) -> list[Statement | Requirement | Table]:
    verdict = Requirement(_("The purge runs on schedule."), on_schedule(facts))
    if not facts.purge_runs:
        return [Statement(_("No purge run is recorded within the audit period."), measured), verdict]
    headers = [_("run"), _("since the run before"), *(str(label) for label in COUNTER_LABELS.values())]
    return [
        Table(
            headers,
            [_row(facts, run) for run in facts.purge_runs],
            source=_("audit events “retention.purged”, %(measured)s", measured=measured),
        ),
        verdict,
    ]


def _row(facts: Facts, run: PurgeRun) -> list[str]:
    if run.gap is None:
        gap = "–"
    else:
        gap = minutes(int(run.gap.total_seconds() // 60))
        if run.late:
            gap = _("%(gap)s (late)", gap=gap)
    return [facts.local(run.at), gap, *(str(run.counts[name]) for name in COUNTER_LABELS)]
