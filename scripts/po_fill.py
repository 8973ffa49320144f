"""Fill German translations into the catalogue from a JSON file {"msgid": "msgstr", ...}.

Usage: .venv/bin/python scripts/po_fill.py translations.json  (then scripts/i18n compile)
Prints the msgids that are still untranslated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parents[1] / "vc_plugin/translations/de/LC_MESSAGES/messages.po"


def main() -> None:
    updates = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")) if len(sys.argv) > 1 else {}
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    catalog.project, catalog.version = "vc_plugin", ""
    catalog.copyright_holder, catalog.msgid_bugs_address = "vc_plugin developers", ""
    catalog.last_translator, catalog.language_team = "vc_plugin developers", "German"
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if key in updates:
            value = updates[key]
            message.string = tuple(value) if isinstance(message.id, tuple) else value
            message.flags.discard("fuzzy")
    with PO.open("wb") as handle:
        write_po(handle, catalog, width=0, omit_header=False, sort_output=True)
    missing = [
        m.id
        for m in catalog
        if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)) or "fuzzy" in m.flags)
    ]
    for msgid in missing:
        print("untranslated:", json.dumps(msgid, ensure_ascii=False))


if __name__ == "__main__":
    main()
