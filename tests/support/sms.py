"""A test implementation of the SMS sender interface: it appends to a file named by the environment."""

from __future__ import annotations

import os
from pathlib import Path

from vc_plugin.core.config import Settings


class FileSms:
    def __init__(self, settings: Settings) -> None:
        self.path = Path(os.environ["VC_TEST_SMS_FILE"])

    def send(self, phone: str, text: str) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(f"{phone}\t{text}\n")
