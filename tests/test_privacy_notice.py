"""The privacy notice follows the configuration; `flask vc check` passes a production-like
configuration and names each requirement a bad one misses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.hosts import make_host_app
from tests.support.processes import ROOT

EXAMPLE = ROOT / "vc_plugin/demo/production.example.cfg"


def notice(host, lang: str) -> str:
    with host.app.app_context():
        result = host.app.test_cli_runner().invoke(args=["vc", "privacy-notice", "--lang", lang])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_notice_is_written_from_the_configuration(database_url, tmp_path):
    plain = make_host_app(database_url)
    changed = make_host_app(
        database_url,
        VC_RETENTION_METADATA_DAYS=30,
        VC_RETENTION_PRESENCE_GRACE_MINUTES=15,
        VC_JOIN_GRACE_MINUTES=15,
        VC_LOG_IP_MODE="truncate",
        VC_TURN_URLS=["turn:turn.praxis-nord.example:3478"],
        VC_TURN_SECRET="s3cret",
        VC_TURN_LOCATION="DE",
        VC_SIGNALING_LOCATION="AT",
        VC_OPERATOR_NAME="Praxis Nord GmbH",
        VC_PROCESSORS=[{"name": "Rechenzentrum Süd", "purpose": "Hosting", "location": "DE"}],
    )
    try:
        before_de, after_de = notice(plain, "de"), notice(changed, "de")
        before_en, after_en = notice(plain, "en"), notice(changed, "en")
    finally:
        plain.close()
        changed.close()
    assert before_de.startswith("# Datenschutzhinweise zur Videosprechstunde")
    assert before_en.startswith("# Privacy notice for video consultations")
    assert "90 Tage nach dem geplanten Ende" in before_de and "30 Tage nach dem geplanten Ende" in after_de
    assert "deleted 90 days after the planned end" in before_en and "deleted 30 days after" in after_en
    assert "60 minutes after its planned end" in before_en and "15 minutes after its planned end" in after_en
    assert "keinen Relay-Server" in before_de and "keinen Relay-Server" not in after_de
    assert "relay server (TURN, turn.praxis-nord.example)" in after_en and "(TURN" not in before_en
    assert "IP addresses are removed" in before_en and "shortened" in after_en
    assert "Signalisierungsserver: nicht angegeben" in before_de and "Signalisierungsserver: AT" in after_de
    assert "Rechenzentrum Süd: Hosting (DE)" in after_de and "keine Auftragsverarbeiter" in before_de
    assert "Praxis Nord GmbH" in after_en and "the organisation that invited you" in before_en
    assert "vc_session" in before_en, "the one cookie is named"

    output = tmp_path / "notice.md"
    with plain.app.app_context():
        result = plain.app.test_cli_runner().invoke(
            args=["vc", "privacy-notice", "--lang", "en", "--output", str(output)]
        )
    assert result.exit_code == 0 and output.read_text(encoding="utf-8") == before_en


def test_the_notice_is_a_public_page_in_both_languages(app):
    client = app.test_client()
    german = client.get("/vc/privacy", headers={"Accept-Language": "de"})
    english = client.get("/vc/privacy", headers={"Accept-Language": "en"})
    assert german.status_code == english.status_code == 200
    assert "Was verarbeitet wird, und wie lange" in german.get_data(as_text=True)
    assert "What is processed, and for how long" in english.get_data(as_text=True)
    sign_in = client.get("/vc/auth/sign-in", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'href="/vc/privacy"' in sign_in, "every page links the notice"


def flask_check(config_file: Path | None, env: dict[str, str], instance: Path) -> subprocess.CompletedProcess[str]:
    options = f"instance_path={str(instance)!r}" + (f", config_file={str(config_file)!r}" if config_file else "")
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", f"vc_plugin.demo:create_app({options})", "vc", "check"],
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_passes_the_demo_production_example(redis_url, tmp_path):
    result = flask_check(EXAMPLE, {"FLASK_VC_REDIS_URL": f'"{redis_url}"'}, tmp_path / "instance")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "[FAIL]" not in result.stdout
    # praxis.example cannot be reached from here: the relay's refusal and the TLS are not verified, and say so.
    for item in ("relay only with consent", "TLS of the public URL"):
        assert any(line.startswith("[WARN]") and item in line for line in lines), item
    for item in (
        "peer-to-peer media",
        "appointment metadata at most 3 months",
        "no third-party requests",
        "HTTPS public URL",
        "secure cookies",
        "rate limits on code entry",
        "sign-in",
        "host layout",
        "servers in the EU/EEA",
        "public terms page",
        "invitation mail",
    ):
        assert any(line.startswith("[PASS]") and item in line for line in lines), item


@pytest.mark.parametrize(
    ("env", "item", "reason"),
    [
        (
            {"FLASK_VC_RETENTION_METADATA_DAYS": "120", "FLASK_VC_RETENTION_ALLOW_LONGER": "true"},
            "appointment metadata at most 3 months",
            "120 days exceeds 90",
        ),
        ({"FLASK_VC_STUN_URLS": '["stun:stun.l.google.com:19302"]'}, "no third-party requests", "stun.l.google.com"),
        ({"FLASK_VC_STUN_URLS": '["turn:turn.praxis.example:3478"]'}, "peer-to-peer media", "only stun: URLs"),
        ({"FLASK_VC_TURN_LOCATION": '"US"'}, "servers in the EU/EEA", "VC_TURN_LOCATION = US"),
        ({"FLASK_VC_SIGNALING_LOCATION": '""'}, "servers in the EU/EEA", "VC_SIGNALING_LOCATION"),
        ({"FLASK_VC_TERMS_URL": '"/no-such-page"'}, "public terms page", "answers 404"),
        ({"FLASK_DEBUG": "true"}, "production mode", "debug"),
        ({"FLASK_VC_BASE_TEMPLATE": '"no-such-layout.html"'}, "host layout", "no-such-layout.html"),
        ({"FLASK_VC_REDIS_URL": '"redis://127.0.0.1:1/0"'}, "rate limits on code entry", "does not answer"),
        ({"FLASK_VC_SMTP_URL": "null", "FLASK_VC_MAILER": '"console"'}, "invitation mail", "VC_MAILER = 'console'"),
    ],
)
def test_check_fails_and_names_the_item(redis_url, tmp_path, env, item, reason):
    result = flask_check(EXAMPLE, {"FLASK_VC_REDIS_URL": f'"{redis_url}"', **env}, tmp_path / "instance")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("[FAIL]")]
    assert any(item in line and reason in line for line in failed), result.stdout


def test_the_hosts_cookie_settings_neither_weaken_ours_nor_fail_the_check(redis_url, tmp_path):
    """The host's session cookie is the host's: its flags do not apply to ours, which stays strict."""
    env = {
        "FLASK_VC_REDIS_URL": f'"{redis_url}"',
        "FLASK_SESSION_COOKIE_SAMESITE": '"None"',
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_SESSION_COOKIE_HTTPONLY": "false",
    }
    result = flask_check(EXAMPLE, env, tmp_path / "instance")
    [line] = [line for line in result.stdout.splitlines() if "secure cookies" in line]
    assert line.startswith("[PASS]") and "Secure, HttpOnly, SameSite=Lax, Path=/vc" in line, line


def test_a_production_app_without_https_does_not_even_start(redis_url, tmp_path):
    env = {"FLASK_VC_REDIS_URL": f'"{redis_url}"', "FLASK_VC_PUBLIC_URL": '"http://praxis.example/"'}
    result = flask_check(EXAMPLE, env, tmp_path / "instance")
    assert result.returncode != 0 and "VC_PUBLIC_URL must be an https:// URL" in result.stderr


def test_the_embedded_demo_fails_the_check_where_it_is_not_production(tmp_path):
    result = flask_check(None, {}, tmp_path / "instance")
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("[FAIL]")]
    assert any("HTTPS public URL" in line for line in failed) and any("secure cookies" in line for line in failed)
