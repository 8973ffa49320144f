"""The pack's documents as plain data, and their Markdown and HTML forms.

A document is made of blocks that say what kind of sentence they are: a statement about this
installation with the source it comes from, a requirement that is met only if its check passed, a
gap the operator must fill in, or a table. Renderers add the words for those kinds in the language
in force, so a reader always sees where a sentence comes from and what is still open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jinja2 import Environment, PackageLoader, select_autoescape

from ..core.catalogue import gettext as _
from ..core.catalogue import language
from .checks import Finding, Status


@dataclass(frozen=True)
class Statement:
    """A sentence; ``source`` names where a fact about this installation comes from."""

    text: str
    source: str | None = None


@dataclass(frozen=True)
class Requirement:
    """A requirement the pack calls met only when ``finding`` passed; otherwise it is an open item."""

    text: str
    finding: Finding

    @property
    def met(self) -> bool:
        return self.finding.status is Status.PASS


@dataclass(frozen=True)
class Blank:
    """What the operator must fill in: the pack cannot know it and never invents it."""

    what: str


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    source: str | None = None


Block = Statement | Requirement | Blank | Table


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    slug: str
    title: str
    intro: str
    sections: list[Section]

    @property
    def open_items(self) -> list[Requirement | Blank]:
        """Each gap, and each requirement not met, once (one failed check may stand behind several)."""
        seen: set[object] = set()
        items: list[Requirement | Blank] = []
        for section in self.sections:
            for block in section.blocks:
                if isinstance(block, Requirement) and not block.met:
                    key: object = block.finding.key
                elif isinstance(block, Blank):
                    key = block
                else:
                    continue
                if key not in seen:
                    seen.add(key)
                    items.append(block)
        return items


def count_open_items(documents: list[Document]) -> int:
    """Across documents: each gap, and each check not passed once, however many sentences rest on it."""
    checks = {b.finding.key for d in documents for b in d.open_items if isinstance(b, Requirement)}
    return len(checks) + sum(1 for d in documents for b in d.open_items if isinstance(b, Blank))


# --- words -------------------------------------------------------------------------------------


def source_note(source: str) -> str:
    return _("source: %(source)s", source=source)


def blank_note(what: str) -> str:
    return _("To be filled in by the operator: %(what)s", what=what)


def requirement_note(requirement: Requirement) -> tuple[str, str]:
    """The verdict and the evidence, from the finding: met, open item, or not verified."""
    finding = requirement.finding
    evidence = _("check “%(item)s”: %(reason)s", item=finding.item, reason=finding.reason)
    if finding.status is Status.PASS:
        return _("met"), evidence
    if finding.status is Status.WARN:
        return _("OPEN ITEM, not verified"), evidence
    return _("OPEN ITEM, not met"), evidence


# --- Markdown ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(document: Document, lang: str) -> str:
    """The document as Markdown, with the words for sources, gaps and verdicts in ``lang``."""
    with language(lang):
        return _markdown(document)


def _markdown(document: Document) -> str:
    lines = [f"# {document.title}", "", document.intro, ""]
    for section in document.sections:
        lines += [f"## {section.heading}", ""]
        for block in section.blocks:
            lines += [*_markdown_block(block), ""]
    return "\n".join(lines).rstrip() + "\n"


def _markdown_block(block: Block) -> list[str]:
    if isinstance(block, Statement):
        return [block.text + (f" *({source_note(block.source)})*" if block.source else "")]
    if isinstance(block, Requirement):
        verdict, evidence = requirement_note(block)
        mark = "✔" if block.met else "✘"
        return [f"- {mark} **{verdict}:** {block.text} *({evidence})*"]
    if isinstance(block, Blank):
        return [f"> **{blank_note(block.what)}**"]
    rows = [
        "| " + " | ".join(_cell(h) for h in block.headers) + " |",
        "|" + "---|" * len(block.headers),
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows),
    ]
    # A blank line first: a line right after a table would be read as one more row.
    return rows + (["", f"*({source_note(block.source)})*"] if block.source else [])


# --- HTML --------------------------------------------------------------------------------------

_templates = Environment(
    loader=PackageLoader("vc_plugin", "templates"), autoescape=select_autoescape(default=True), auto_reload=False
)


def html(document: Document, lang: str, index: list[tuple[str, str]]) -> str:
    """A page that stands alone (styles inside, nothing loaded from anywhere), printable to PDF."""
    with language(lang):
        return _templates.get_template("vc_plugin/compliance/document.html").render(
            document=document,
            language=lang,
            index=index,
            kind=_kind,
            source_note=source_note,
            blank_note=blank_note,
            requirement_note=requirement_note,
            contents_label=_("Documents of this pack"),
        )


def _kind(block: Block) -> str:
    return type(block).__name__.lower()
