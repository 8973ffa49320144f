"""The demo host: one command, embedded defaults, loopback and debug only."""

from __future__ import annotations

import re

import pytest
import requests

from tests.support.processes import Process, free_port, port_open, python, wait_for


@pytest.mark.slow
def test_demo_starts_and_serves_the_plugin(tmp_path):
    port = free_port()
    demo = Process(
        python("-m", "vc_plugin.demo", "--port", str(port), "--instance", str(tmp_path / "instance")),
        log=tmp_path / "demo.log",
    )
    try:
        wait_for(lambda: port_open(port), 30, what="demo server")
        assert f"http://127.0.0.1:{port}/" in demo.output
        home = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert home.status_code == 200 and "/vc/" in home.text
        session = requests.Session()
        sign_in = session.get(f"http://127.0.0.1:{port}/vc/auth/sign-in", timeout=5)
        assert "Dr. Demo Praxis" in sign_in.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', sign_in.text).group(1)
        dashboard = session.post(
            f"http://127.0.0.1:{port}/vc/auth/dev",
            data={"csrf_token": token, "persona": "practitioner", "next": "/vc/"},
            timeout=5,
        )
        assert dashboard.status_code == 200 and "Dr. Demo Praxis" in dashboard.text
        assert (tmp_path / "instance" / "demo.sqlite").exists()
        # What a newcomer reads: our start line with the port, no scrubbed "Running on http://[ip]:…",
        # and no request lines in which the printed invitation mails would drown (--verbose shows them).
        assert f"vc_plugin demo: http://127.0.0.1:{port}/" in demo.output and "--port" in demo.output
        assert "[ip]" not in demo.output and "Running on" not in demo.output
        assert "GET /vc/auth/sign-in" not in demo.output, demo.output
    finally:
        demo.stop()


def test_demo_refuses_anything_but_loopback(tmp_path):
    from vc_plugin.demo.__main__ import main

    assert main(["--host", "0.0.0.0", "--instance", str(tmp_path)]) == 2
    assert not (tmp_path / "demo.sqlite").exists()
