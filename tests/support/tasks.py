"""Job functions used by the adapter tests; they record into Redis or a file what happened."""

from __future__ import annotations

from pathlib import Path

from vc_plugin.web.state import vc_state


def record(path: str, value: str) -> None:
    with Path(path).open("a") as out:
        out.write(value + "\n")
    vc_state()  # proves the app context is there


def fail_times(path: str, times: int) -> None:
    counter = Path(path + ".attempts")
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    if attempts <= times:
        raise RuntimeError(f"planned failure {attempts}")
    record(path, f"succeeded after {attempts}")


def note_final_failure(path: str, times: int) -> None:
    record(path, "final failure")
