"""The wheel and the sdist carry templates, static files, translations and migrations."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = (
    "vc_plugin/templates/vc_plugin/base.html",
    "vc_plugin/templates/vc_plugin/privacy.html",
    "vc_plugin/templates/vc_plugin/email/invitation.txt",
    "vc_plugin/static/vc_plugin/vc.css",
    "vc_plugin/static/vc_plugin/js/pages/room.js",
    "vc_plugin/translations/de/LC_MESSAGES/messages.mo",
    "vc_plugin/migrations/env.py",
    "vc_plugin/migrations/script.py.mako",
    "vc_plugin/migrations/versions/0001_initial_tables.py",
    "vc_plugin/migrations/versions/0003_appointment_end_index.py",
    "vc_plugin/demo/templates/demo/home.html",
    "vc_plugin/demo/templates/demo/imprint.html",
    "vc_plugin/demo/production.example.cfg",
)


@pytest.mark.slow
def test_wheel_contains_package_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("vc_plugin-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in PACKAGE_DATA:
        assert required in names, f"{required} missing from the wheel"
    assert not any(name.startswith("tests/") for name in names)


@pytest.mark.slow
def test_sdist_contains_package_data_and_the_catalogue_source(tmp_path):
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], check=True, capture_output=True, cwd=ROOT
    )
    [sdist] = tmp_path.glob("vc_plugin-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in (*PACKAGE_DATA, "vc_plugin/translations/de/LC_MESSAGES/messages.po", "README.md"):
        assert required in names, f"{required} missing from the sdist"
