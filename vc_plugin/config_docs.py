"""The README's configuration table, generated from :class:`vc_plugin.core.config.Settings`.

``python -m vc_plugin.config_docs`` prints it; ``--write README.md`` replaces the table
between the ``config-table`` markers. A test keeps the README and the settings in step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic_core import PydanticUndefined

from .core.config import Settings, key_name

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def markdown_table() -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key_name(name)}` | {_default(name)} | {description} |")
    return "\n".join(rows)


def write(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    readme.write_text(f"{before}{START}\n{markdown_table()}\n{END}{after}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="README to update in place")
    args = parser.parse_args()
    if args.write:
        write(args.write)
    else:
        print(markdown_table())


if __name__ == "__main__":
    main()
