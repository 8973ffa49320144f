"""The machine and the versions a run used, for the report: figures mean little without them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.services import NODE_DIR, PG_ADMIN_URL


def _run(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _postgres() -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one()).split()[0]
    except Exception:
        return "?"
    finally:
        engine.dispose()


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def collect() -> dict[str, Any]:
    peer = NODE_DIR / "node_modules" / "peer" / "package.json"
    ws = NODE_DIR / "node_modules" / "ws" / "package.json"
    memory_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "open_files_limit": _run("sh", "-c", "ulimit -n"),
        "python": platform.python_version(),
        "gunicorn": _package("gunicorn"),
        "gevent": _package("gevent"),
        "flask_sock": _package("flask-sock"),
        "simple_websocket": _package("simple-websocket"),
        "websockets_client": _package("websockets"),  # also the signalling server's
        "msgspec": _package("msgspec"),
        "hiredis": _package("hiredis"),
        "redis_py": _package("redis"),
        "aiortc": _package("aiortc"),
        "rq": _package("rq"),
        "redis": _run("redis-server", "--version").split(" v=")[-1].split()[0]
        if _run("which", "redis-server")
        else "?",
        "postgresql": _postgres(),
        "node": _run("node", "--version").lstrip("v"),
        "peer": json.loads(peer.read_text())["version"] if peer.exists() else "?",
        "ws": json.loads(ws.read_text())["version"] if ws.exists() else "?",
    }
