"""How invitations travel: production does not start without a mail server unless the console was
chosen on purpose, and the console never prints access codes or links outside debug mode."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.hosts import HostApp, make_host_app
from tests.support.people import make_people
from vc_plugin import ConfigurationError
from vc_plugin.adapters.mail import HIDDEN, ConsoleMailer, SmtpMailer
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn

#: Valid production settings apart from mail: no debug, no testing, an https public URL.
PRODUCTION: dict[str, Any] = {"TESTING": False, "DEBUG": False, "VC_PUBLIC_URL": "https://praxis.example/"}
#: The demo's shape: debug on, testing off, no mail server.
DEBUG: dict[str, Any] = {"TESTING": False, "DEBUG": True}
EMAIL = "anna.schmidt@example.org"


def test_production_without_a_mail_server_does_not_start(database_url, clock):
    with pytest.raises(ConfigurationError, match=r"^VC_SMTP_URL is missing.*set VC_MAILER = 'console'"):
        make_host_app(database_url, clock=clock, **PRODUCTION)

    host = make_host_app(database_url, clock=clock, VC_SMTP_URL="smtp://mail.praxis.example:587", **PRODUCTION)
    try:
        assert isinstance(host.state.mailer, SmtpMailer), "with a mail server the same settings start"
    finally:
        host.close()


def test_the_console_starts_in_production_only_when_chosen(database_url, clock):
    host = make_host_app(database_url, clock=clock, VC_MAILER="console", **PRODUCTION)
    try:
        mailer = host.state.mailer
        assert isinstance(mailer, ConsoleMailer) and not mailer.reveals_secrets
    finally:
        host.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"VC_MAILER": "smtp"}, r"VC_MAILER = 'smtp' needs VC_SMTP_URL"),
        ({"VC_MAILER": "console", "VC_SMTP_URL": "smtp://mail.praxis.example"}, r"VC_MAILER = 'console' and VC_SMTP"),
        ({"VC_MAILER": "pigeon"}, r"VC_MAILER: .*'smtp' or 'console'"),
    ],
)
def test_contradictory_mail_settings_stop_start_up_in_any_mode(overrides, message):
    for mode in (PRODUCTION, DEBUG, {}):
        with pytest.raises(ConfigurationError, match=message):
            make_host_app("sqlite://", **{**mode, **overrides})


def _printed_invitation(host: HostApp, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, str]:
    """Plan an appointment with an emailed invitation; return what the console printed, the code, the link."""
    with host.app.app_context():
        state = host.state
        people = make_people(state)
        start = state.clock.now() + timedelta(minutes=10)
        planned = state.appointments.plan(
            Principal.of(people.doc),
            AppointmentIn(
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                participants=[ParticipantIn(email=EMAIL, language="de")],
            ),
        )
        assert state.jobs.wait_idle(), "the invitation job ran"
    issued = planned.invitations[0]
    return capsys.readouterr().out, issued.code, issued.link


def test_outside_debug_the_console_hides_codes_and_links(database_url, clock, capsys):
    host = make_host_app(database_url, clock=clock, VC_MAILER="console", **PRODUCTION)
    try:
        printed, code, link = _printed_invitation(host, capsys)
    finally:
        host.close()
    invitation_id = link.split("/join/", 1)[1].split("#", 1)[0]
    assert "a…@example.org" in printed and "termin.ics" in printed, "the mail was printed"
    assert f"https://praxis.example/vc/join/{HIDDEN}" in printed
    assert code not in printed and code.replace("-", "") not in printed
    assert "#code=" not in printed
    assert link not in printed and link.split("#", 1)[0] not in printed
    assert invitation_id not in printed
    assert EMAIL not in printed


def test_in_debug_mode_the_console_prints_the_whole_mail_for_the_demo(database_url, clock, capsys):
    host = make_host_app(database_url, clock=clock, **DEBUG)
    try:
        assert isinstance(host.state.mailer, ConsoleMailer), "debug mode starts without a mail server"
        printed, code, link = _printed_invitation(host, capsys)
    finally:
        host.close()
    assert link in printed and f"#code={code}" in printed and code in printed
    assert HIDDEN not in printed
    assert EMAIL not in printed, "the recipient stays masked in debug mode too"


def _check_line(host: HostApp, item: str) -> str:
    with host.app.app_context():
        result = host.app.test_cli_runner().invoke(args=["vc", "check"])
    [line] = [line for line in result.output.splitlines() if f"] {item}:" in line]
    return line


def test_the_check_fails_console_mail_and_passes_smtp(database_url, clock):
    console = make_host_app(database_url, clock=clock, VC_MAILER="console", **PRODUCTION)
    try:
        line = _check_line(console, "invitation mail")
    finally:
        console.close()
    assert line.startswith("[FAIL]") and "VC_MAILER = 'console'" in line and "VC_SMTP_URL" in line

    smtp = make_host_app(database_url, clock=clock, VC_SMTP_URL="smtps://mail.praxis.example:465", **PRODUCTION)
    try:
        line = _check_line(smtp, "invitation mail")
    finally:
        smtp.close()
    assert line.startswith("[PASS]") and "mail.praxis.example:465 (implicit TLS)" in line
    assert "console" not in line

    demo = make_host_app(database_url, clock=clock, **DEBUG)
    try:
        line = _check_line(demo, "invitation mail")
    finally:
        demo.close()
    assert line.startswith("[FAIL]") and "in full" in line
