"""``flask vc compliance-pack``: the documents a data-protection officer and a certifier ask for,
written from this installation's settings, checks and records, in German or English.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask

from ..core.catalogue import gettext as _
from ..core.catalogue import language
from ..web.state import VCState
from .anlage31b import anlage_31b
from .checks import Status
from .data_classes import built_in, setting
from .deletion import deletion_concept
from .document import Blank, Document, Section, Statement, Table, count_open_items, html, markdown
from .facts import Facts, gather
from .measures import crypto_statement, technical_measures
from .records import processors, records_of_processing
from .requests import subject_requests
from .risks import impact_assessment

#: Every document of the pack, in reading order after the index.
BUILDERS: tuple[Callable[[Facts], Document], ...] = (
    records_of_processing,
    technical_measures,
    impact_assessment,
    deletion_concept,
    processors,
    subject_requests,
    anlage_31b,
    crypto_statement,
)


def build_pack(app: Flask, state: VCState, lang: str) -> list[Document]:
    """The index first, then each document and the checks, all in ``lang``."""
    with language(lang):
        facts = gather(app, state)
        documents = [build(facts) for build in BUILDERS] + [checks_document(facts)]
        return [index_document(facts, documents), *documents]


def write_pack(documents: list[Document], lang: str, output: Path) -> list[Path]:
    """Each document as Markdown and as a standalone HTML page; returns the files written."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    contents = [(document.slug, document.title) for document in documents]
    for document in documents:
        for path, text in (
            (output / f"{document.slug}.md", markdown(document, lang)),
            (output / f"{document.slug}.html", html(document, lang, contents)),
        ):
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def checks_document(facts: Facts) -> Document:
    words = {Status.PASS: _("met"), Status.FAIL: _("not met"), Status.WARN: _("not verified")}
    findings = list(facts.findings.values())
    return Document(
        "checks",
        _("Checks of this installation"),
        _(
            "The results of flask vc check at the time of this pack. Every requirement the documents call met "
            "rests on one of these; a failed or unverified check is an open item there."
        ),
        [
            Section(
                _("Results"),
                [
                    Table(
                        [_("requirement"), _("result"), _("why")],
                        [[f.item, words[f.status], f.reason] for f in findings],
                        source=_("measured at %(time)s", time=facts.local(facts.generated_at)),
                    )
                ],
            )
        ],
    )


def index_document(facts: Facts, documents: list[Document]) -> Document:
    settings = facts.settings
    open_items = count_open_items(documents)
    failed = [f for f in facts.findings.values() if f.status is not Status.PASS]
    return Document(
        "index",
        _("Compliance pack: video consultations"),
        _(
            "Generated from this installation's configuration, its checks and its own records. Every sentence "
            "about the installation names its source; what the operator must add is marked as such."
        ),
        [
            Section(
                _("About this pack"),
                [
                    Statement(
                        _(
                            "Generated on %(time)s by vc_plugin %(version)s.",
                            time=facts.local(facts.generated_at),
                            version=facts.version,
                        ),
                        built_in(),
                    ),
                    Statement(
                        _("Installation: %(url)s.", url=settings.public_url or _("no public URL set")),
                        setting(settings, "public_url"),
                    ),
                    Statement(
                        _(
                            "%(open)d open items (checks that failed or could not be verified, and gaps to fill in); "
                            "%(failed)d of %(checks)d checks did not pass.",
                            open=open_items,
                            failed=len(failed),
                            checks=len(facts.findings),
                        ),
                        _("measured at %(time)s", time=facts.local(facts.generated_at)),
                    ),
                ],
            ),
            Section(
                _("Documents"),
                [
                    Table(
                        [_("document"), _("file"), _("open items")],
                        [[d.title, f"{d.slug}.md, {d.slug}.html", str(len(d.open_items))] for d in documents],
                    )
                ],
            ),
            Section(
                _("How to read it"),
                [
                    Statement(
                        _(
                            "“source” names the setting (with its value in force), the measurement or the built-in "
                            "behaviour a sentence rests on. A requirement is ticked as met only when its check "
                            "passed; otherwise it is an open item with the check's reason."
                        )
                    ),
                    Blank(_("these boxes: what only the organisation knows")),
                ],
            ),
            Section(
                _("What the pack cannot know"),
                [
                    Statement(
                        _(
                            "Legal bases, the data protection officer, contracts with processors, backups, the "
                            "reverse proxy's and the database's own settings, training and procedures, and whether "
                            "the declared processors and locations are true. It can only check what the running "
                            "service shows; regenerate it after every change of configuration."
                        )
                    )
                ],
            ),
        ],
    )
