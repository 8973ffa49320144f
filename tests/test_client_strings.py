"""Every text the scripts ask for exists (and so is translated with the rest)."""

from __future__ import annotations

import re
from pathlib import Path

from vc_plugin.web.client_strings import CLIENT_STRINGS, DYNAMIC_FAMILIES

SCRIPTS = Path(__file__).resolve().parents[1] / "vc_plugin/static/vc_plugin/js"
ROOT = Path(__file__).resolve().parents[1] / "vc_plugin"


def test_every_key_the_scripts_use_exists():
    used: set[str] = set()
    for script in SCRIPTS.rglob("*.js"):
        source = script.read_text()
        used |= set(re.findall(r'\bt\("([a-z_-]+)"', source))
        for pair in re.findall(r'finish\("([a-z_]+)", "([a-z_]+)"\)', source):
            used |= set(pair)
    for prefix, members in DYNAMIC_FAMILIES.items():
        used |= {prefix + member for member in members}
    assert used - set(CLIENT_STRINGS) == set()


def test_every_protocol_error_has_a_text():
    codes: set[str] = set()
    for module in ROOT.rglob("*.py"):
        codes |= set(re.findall(r'ProtocolError\(\s*"([a-z_]+)"', module.read_text()))
    assert codes, "no protocol errors found: the pattern is out of date"
    assert {f"error_{code}" for code in codes} - set(CLIENT_STRINGS) == set()
