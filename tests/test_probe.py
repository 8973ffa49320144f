"""The operator probe: `flask vc probe` against a running server, directly and through coturn."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests
from redis import Redis

from tests.support.coturn import SECRET, Coturn
from tests.support.live import LiveServer
from tests.support.processes import ROOT
from vc_plugin.core.crypto import token_digest

pytestmark = pytest.mark.slow
TOKEN = "vcop_probe-token-for-tests-0123456789"


def probe(server: LiveServer, pg_url: str, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "VC_TEST_DATABASE_URL": pg_url,
        "VC_TEST_CONFIG": json.dumps(server.config),
        "VC_OPERATOR_TOKEN": token,
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "tests.support.worker_app:create_app", "vc", "probe", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_probe_sets_up_a_call_and_leaves_nothing(pg_url, redis_url, tmp_path):
    coturn = Coturn(tmp_path).start()
    config = {
        "VC_REDIS_URL": redis_url,
        "VC_OPERATOR_TOKEN_HASH": token_digest(TOKEN),
        "VC_TURN_URLS": [coturn.url],
        "VC_TURN_SECRET": SECRET,
    }
    server = LiveServer(pg_url, config, tmp_path).start()
    try:
        direct = probe(server, pg_url)
        assert direct.returncode == 0, direct.stdout + direct.stderr
        assert "ok: call set up in" in direct.stdout and "path direct" in direct.stdout
        relayed = probe(server, pg_url, "--relay")
        assert relayed.returncode == 0, relayed.stdout + relayed.stderr
        assert "path relayed" in relayed.stdout
        assert list(Redis.from_url(redis_url).scan_iter("vc:room:*")) == []
        refused = probe(server, pg_url, token="vcop_wrong")
        assert refused.returncode == 1 and "HTTP 401" in refused.stdout
        assert requests.post(f"{server.url}/vc/api/v1/probe", timeout=5).status_code == 401
    finally:
        server.stop()
        coturn.stop()


def test_probe_fails_clearly_when_the_deployment_is_down(pg_url, redis_url, tmp_path):
    server = LiveServer(pg_url, {"VC_REDIS_URL": redis_url, "VC_OPERATOR_TOKEN_HASH": token_digest(TOKEN)}, tmp_path)
    result = probe(server, pg_url)  # never started
    assert result.returncode == 1 and "unreachable" in result.stdout
