"""The npm ``oidc-provider`` started as a real process, and a requests-based browser for it."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from tests.support.processes import ROOT, Process, free_port, wait_for

NODE_DIR = ROOT / "tests" / "node"
CLIENT_ID, CLIENT_SECRET = "vc-test", "vc-test-secret-0123456789"


def client_metadata(app_root: str, client_id: str = CLIENT_ID, **extra: Any) -> dict[str, Any]:
    root = app_root.rstrip("/")
    metadata = {
        "client_id": client_id,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"{root}/vc/auth/callback"],
        "post_logout_redirect_uris": [f"{root}/vc/auth/signed-out"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    metadata.update(extra)
    return metadata


@dataclass
class OidcProvider:
    clients: list[dict[str, Any]]
    log_dir: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OidcProvider:
        node = shutil.which("node")
        if node is None or not (NODE_DIR / "node_modules" / "oidc-provider").exists():
            raise RuntimeError("oidc-provider is not installed: run scripts/test-services (npm ci in tests/node)")
        self.process = Process(
            [node, str(NODE_DIR / "oidc-provider.mjs")],
            env={"PORT": str(self.port), "CLIENTS": json.dumps(self.clients)},
            log=self.log_dir / f"oidc-provider-{self.port}.log",
            cwd=NODE_DIR,
        )
        wait_for(lambda: "READY" in self.process.output or not self.process.alive(), 20, what="oidc-provider")
        if not self.process.alive():
            raise RuntimeError("oidc-provider did not start:\n" + self.process.output)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append({"action": values.get("action") or "", "fields": {}, "buttons": {}})
        elif self.forms and tag == "input" and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value") or ""
        elif self.forms and tag == "button" and values.get("name"):
            self.forms[-1]["buttons"][values["name"]] = values.get("value") or ""


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class ProviderBrowser:
    """Walks the provider's pages like a person: log in with any password, give consent."""

    def __init__(self, provider: OidcProvider) -> None:
        self.provider = provider
        self.session = requests.Session()
        self.pages_seen: list[str] = []

    def follow(self, url: str, *, login: str, stop_prefix: str, limit: int = 12) -> str:
        """Follow redirects and forms at the provider until a URL starting with ``stop_prefix``."""
        for _ in range(limit):
            if url.startswith(stop_prefix):
                return url
            response = self.session.get(url, allow_redirects=False, timeout=10)
            for _inner in range(limit):
                if response.is_redirect:
                    url = urljoin(response.url, response.headers["Location"])
                    break
                page_forms = forms(response.text)
                if not page_forms:
                    raise AssertionError(f"no form and no redirect at {response.url}: {response.text[:300]}")
                form = page_forms[0]
                data = dict(form["fields"])
                if "login" in data:
                    data.update(login=login, password="any-password")
                    self.pages_seen.append("login")
                elif form["buttons"]:
                    data.update(form["buttons"])
                    self.pages_seen.append("confirm")
                else:
                    self.pages_seen.append("consent")
                response = self.session.post(
                    urljoin(response.url, form["action"]), data=data, allow_redirects=False, timeout=10
                )
            else:
                raise AssertionError("too many forms")
        raise AssertionError(f"did not reach {stop_prefix}")


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
