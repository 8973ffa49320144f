"""Benchmark 6: what a patient's browser downloads for the check-in page and the call page.

A real check-in (link, code, name, consent) against a server started for it; for each page
the HTML plus everything it loads: stylesheets, icons, scripts and the ES modules they import
(followed recursively, as a browser does). Sizes as our app serves them, and gzip-compressed
(level 6, what a compressing proxy in front of it would send): our app does not compress.
"""

from __future__ import annotations

import gzip
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from bench.context import Context
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn

HTML_REFS = re.compile(r'<(?:link|script|img)\b[^>]*?(?:href|src)="([^"]+)"', re.IGNORECASE)
JS_IMPORTS = re.compile(r'(?:import|export)\s[^;]*?from\s*"([^"]+)"|import\s*\(?\s*"([^"]+)"')
CSS_URLS = re.compile(r'url\(\s*["\']?([^"\')]+)["\']?\s*\)')


def _resources(session: requests.Session, page_url: str) -> dict[str, bytes]:
    """The page and everything it pulls in, by URL."""
    found: dict[str, bytes] = {}
    queue = [page_url]
    while queue:
        url = queue.pop()
        if url in found or urlsplit(url).netloc != urlsplit(page_url).netloc:
            continue
        response = session.get(url, timeout=10)
        response.raise_for_status()
        found[url] = response.content
        text = response.text if _is_text(url, response) else ""
        if url == page_url or "html" in response.headers.get("Content-Type", ""):
            refs = HTML_REFS.findall(text)
        elif url.endswith(".js"):
            refs = [a or b for a, b in JS_IMPORTS.findall(text)]
        elif url.endswith(".css"):
            refs = [u for u in CSS_URLS.findall(text) if not u.startswith("data:")]
        else:
            refs = []
        queue.extend(urljoin(url, ref) for ref in refs)
    return found


def _is_text(url: str, response: requests.Response) -> bool:
    kind = response.headers.get("Content-Type", "")
    return url.endswith((".js", ".css")) or "text" in kind or "javascript" in kind


def _weigh(found: dict[str, bytes]) -> dict[str, Any]:
    return {
        "files": len(found),
        "served": sum(len(b) for b in found.values()),
        "gzip": sum(len(gzip.compress(b, 6)) for b in found.values()),
        "by_file": {urlsplit(u).path: len(b) for u, b in sorted(found.items())},
    }


def page_weight(ctx: Context) -> dict[str, Any]:
    server = ctx.ours("gthread")
    try:
        state = ctx.state
        start = state.clock.now() + timedelta(minutes=10)
        planned = state.appointments.plan(
            Principal.of(ctx.doctors[0]),
            AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30), participants=[ParticipantIn()]),
        )
        issued = planned.invitations[0]
        browser = requests.Session()
        link = f"{server.url}/vc/join/{issued.invitation.public_id}"
        check_in = _resources(browser, link)
        token = re.search(r'name="csrf_token" value="([^"]+)"', check_in[link].decode()).group(1)  # type: ignore[union-attr]
        answer = browser.post(
            link,
            data={"csrf_token": token, "code": issued.code, "name": "Frau Test", "consent": "yes"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, answer.text[:300]
        room_url = urljoin(link, answer.headers["Location"])
        room = _resources(browser, room_url)
        served_compressed = browser.get(room_url, headers={"Accept-Encoding": "gzip, br"}, timeout=10)
        journey = {**check_in, **room}
    finally:
        ctx.stop(server)
    return {
        "check_in": _weigh(check_in),
        "call": _weigh(room),
        "journey": _weigh(journey),
        "app_compresses": served_compressed.headers.get("Content-Encoding") is not None,
    }
