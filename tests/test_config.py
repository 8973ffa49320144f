"""Configuration: documented defaults, and start-up errors that name the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from tests.support.hosts import base_config
from vc_plugin import ConfigurationError, VideoConsultation
from vc_plugin.config_docs import markdown_table
from vc_plugin.core.config import Settings, key_name, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _start(**overrides) -> None:
    app = Flask("cfg")
    config = base_config("sqlite://", **overrides)
    app.config.update({k: v for k, v in config.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        app.config.pop(key, None)
    VideoConsultation(app)
    app.extensions["vc_plugin"].close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"VC_ENCRYPTION_KEYS": []}, r"VC_ENCRYPTION_KEYS is missing.*flask vc generate-key"),
        ({"VC_ENCRYPTION_KEYS": ["not base64!"]}, r"VC_ENCRYPTION_KEYS: .*not base64"),
        ({"VC_ENCRYPTION_KEYS": ["c2hvcnQ"]}, r"VC_ENCRYPTION_KEYS: .*5 bytes; 32 are needed"),
        ({"VC_RETENTION_METADATA_DAYS": 120}, r"VC_RETENTION_METADATA_DAYS = 120 .*VC_RETENTION_ALLOW_LONGER"),
        ({"VC_REDIS_URL": "localhost:6379"}, r"VC_REDIS_URL: .*redis://host:port/db"),
        ({"VC_SMTP_URL": "mail.example.org"}, r"VC_SMTP_URL: .*smtp://host:port"),
        ({"VC_DISPLAY_TIMEZONE": "Mars/Olympus"}, r"VC_DISPLAY_TIMEZONE: .*unknown time zone"),
        ({"VC_URL_PREFIX": "vc/"}, r"VC_URL_PREFIX: .*start with '/'"),
        ({"VC_MAX_PARTICIPANTS": 40}, r"VC_MAX_PARTICIPANTS: "),
        ({"VC_LANGUAGES": ["fr"]}, r"VC_LANGUAGES: .*only 'de' and 'en'"),
        ({"VC_TURN_URLS": ["turn:turn.example.org"]}, r"VC_TURN_SECRET"),
        ({"VC_OIDC_ISSUER": "https://id.example.org"}, r"VC_OIDC_CLIENT_ID is missing"),
        ({"VC_ENCRYPTON_KEYS": ["x"]}, r"VC_ENCRYPTON_KEYS is not a vc_plugin setting"),
        ({"SECRET_KEY": None}, r"SECRET_KEY is missing"),
        ({"VC_FRAME_ANCESTORS": "'self'; script-src *"}, r"VC_FRAME_ANCESTORS: .*CSP source list"),
        ({"VC_RATELIMIT_JOIN": "lots"}, r"VC_RATELIMIT_JOIN: .*expected a rate limit like"),
    ],
)
def test_bad_configuration_stops_start_up(overrides, message):
    with pytest.raises(ConfigurationError, match=message):
        _start(**overrides)


def test_production_requires_https_public_url():
    config = {"SECRET_KEY": "k", "VC_ENCRYPTION_KEYS": base_config("x")["VC_ENCRYPTION_KEYS"]}
    with pytest.raises(ConfigurationError, match="VC_PUBLIC_URL must be an https:// URL"):
        load_settings({**config, "VC_PUBLIC_URL": "http://praxis.example/"}, debug=False, testing=False)
    with pytest.raises(ConfigurationError, match="VC_PUBLIC_URL must be an https:// URL"):
        load_settings(config, debug=False, testing=False)
    production = {**config, "VC_PUBLIC_URL": "https://praxis.example", "VC_SMTP_URL": "smtp://mail.praxis.example"}
    settings = load_settings(production, debug=False, testing=False)
    assert settings.public_url == "https://praxis.example/"
    assert load_settings(config, debug=True, testing=False).public_url is None


def test_a_link_never_outlives_the_waiting_room():
    config = {"SECRET_KEY": "k", "VC_ENCRYPTION_KEYS": base_config("x")["VC_ENCRYPTION_KEYS"]}
    late = {**config, "VC_JOIN_GRACE_MINUTES": 30, "VC_RETENTION_PRESENCE_GRACE_MINUTES": 15}
    with pytest.raises(ConfigurationError, match="VC_JOIN_GRACE_MINUTES = 30 is longer than presence is kept"):
        load_settings(late, debug=True, testing=False)
    assert load_settings({**late, "VC_JOIN_GRACE_MINUTES": 15}, debug=True, testing=False).join_grace_minutes == 15


def test_longer_retention_needs_the_explicit_override():
    config = {"SECRET_KEY": "k", "VC_ENCRYPTION_KEYS": base_config("x")["VC_ENCRYPTION_KEYS"]}
    settings = load_settings(
        {**config, "VC_RETENTION_METADATA_DAYS": 120, "VC_RETENTION_ALLOW_LONGER": True}, debug=True, testing=False
    )
    assert settings.exceeded_retention_bounds() == {"retention_metadata_days": (120, 90)}


def test_defaults_are_the_documented_ones():
    settings = Settings(encryption_keys=base_config("x")["VC_ENCRYPTION_KEYS"])
    assert settings.url_prefix == "/vc"
    assert settings.display_timezone == "Europe/Berlin"
    assert settings.retention_metadata_days == 90
    assert settings.max_participants == 6
    assert settings.code_max_attempts == 10
    assert settings.stun_urls == []  # no third-party STUN server unless the operator names one


def test_readme_lists_every_key():
    readme = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"`(VC_[A-Z0-9_]+)`", readme))
    expected = {key_name(name) for name in Settings.model_fields}
    assert expected - documented == set(), "keys missing from the README's configuration table"
    assert documented - expected == set(), "README documents keys that do not exist"


def test_readme_table_matches_the_settings():
    """The table is generated from the settings; `python -m vc_plugin.config_docs` prints it."""
    readme = README.read_text(encoding="utf-8")
    start, end = "<!-- config-table:start -->\n", "<!-- config-table:end -->"
    assert start in readme and end in readme
    section = readme.split(start, 1)[1].split(end, 1)[0]
    assert section.strip() == markdown_table().strip(), "run: python -m vc_plugin.config_docs --write README.md"
