"""Everything a person reads exists in German and English."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import g
from werkzeug.exceptions import Unauthorized

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "vc_plugin/translations/de/LC_MESSAGES"


def _extract(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "-k",
            "gettext",
            "-k",
            "lazy_gettext",
            "-k",
            "_l",
            "-k",
            "ngettext:1,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


def test_every_text_has_a_german_translation(tmp_path):
    with (CATALOG / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and m.string and "fuzzy" not in m.flags and (not isinstance(m.string, tuple) or all(m.string))
    }
    missing = _extract(tmp_path) - translated
    assert missing == set(), "run scripts/i18n and translate: " + ", ".join(sorted(missing))


def test_compiled_catalogue_is_current():
    def key(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    with (CATALOG / "messages.po").open("rb") as handle:
        source = {key(m.id): key(m.string) for m in read_po(handle) if m.id}
    with (CATALOG / "messages.mo").open("rb") as handle:
        compiled = {key(m.id): key(m.string) for m in read_mo(handle) if m.id}
    assert compiled == source, "run scripts/i18n compile"


def test_pages_follow_the_browser_then_the_choice(host):
    client = host.app.test_client()
    german = client.get("/vc/auth/sign-in", headers={"Accept-Language": "de-DE,de;q=0.9"}).get_data(as_text=True)
    assert 'lang="de"' in german and "Anmelden" in german
    english = client.get("/vc/auth/sign-in", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    assert 'lang="en"' in english and "Sign in" in english
    # Choosing German overrides the English browser.
    page = client.get("/vc/auth/sign-in", headers={"Accept-Language": "en"}).get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/vc/language", data={"language": "de", "csrf_token": token, "next": "/vc/auth/sign-in"})
    chosen = client.get("/vc/auth/sign-in", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'lang="de"' in chosen


def test_a_socket_handshake_chooses_no_language_but_pages_still_do(host):
    """Handshakes render nothing: the language step is skipped there (part of a connect's cost)."""
    handshake = {"Origin": "http://127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade", "Accept-Language": "de"}
    with host.app.test_request_context("/vc/ws/practice", headers=handshake):
        with pytest.raises(Unauthorized):  # nobody signed in: refused, as before
            host.app.preprocess_request()
        assert "vc_language" not in g and "vc_language_manager" not in g
    with host.app.test_request_context("/vc/auth/sign-in", headers={"Accept-Language": "de"}):
        host.app.preprocess_request()
        assert g.vc_language == "de"
