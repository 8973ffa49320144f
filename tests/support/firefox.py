"""Debian's Firefox ESR driven over WebDriver BiDi, the W3C protocol Firefox speaks itself.

Only Debian's ``firefox-esr`` and the ``websockets`` package are needed: no geckodriver and no
Playwright-patched Firefox (neither comes from Debian, PyPI or npm). Pages offer the few methods
our browser tests use, with Playwright's names and signatures (timeouts in milliseconds), so that
the shared steps in ``tests/browser/conftest.py`` (``check_in``, ``open_call``, ``in_call`` …)
drive Firefox unchanged. Every command and every wait is bounded in time.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from websockets.sync.client import ClientConnection, connect

# Preferences of the throw-away profile: fake camera and microphone without a permission prompt,
# media that may play without a gesture (as Chromium's --autoplay-policy flag), no first-run pages,
# telemetry, updates or other background traffic, and no throttling of windows in the background.
PREFS: dict[str, bool | int | str] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "media.autoplay.block-webaudio": False,
    "media.suspend-background-video.enabled": False,
    # Loopback candidates too: a CI machine may have no other interface.
    "media.peerconnection.ice.loopback": True,
    "remote.active-protocols": 1,  # WebDriver BiDi only (no CDP)
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.tabs.warnOnClose": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "app.update.auto": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "dom.timeout.enable_budget_timer_throttling": False,
    "dom.min_background_timeout_value": 4,
}
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")
POLL_SECONDS = 0.1


class BidiError(RuntimeError):
    """Firefox refused a command (unknown element, navigation not allowed, …)."""


class JavaScriptError(RuntimeError):
    """A script run in the page threw."""


def firefox_path() -> str:
    """The browser, or a clear error: a missing browser must never turn into a skipped test."""
    path = shutil.which("firefox-esr")
    if path is None:
        raise RuntimeError("Debian's firefox-esr is not installed: run scripts/test-services (apt install firefox-esr)")
    return path


def user_js(prefs: dict[str, bool | int | str]) -> str:
    return "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs.items())


# --- values between Python and the page (WebDriver BiDi's LocalValue and RemoteValue) -------------


@dataclass(frozen=True)
class NodeRef:
    """An element of the page, as BiDi names it (for commands such as input.setFiles)."""

    shared_id: str


SCALARS = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string"}
SPECIAL_NUMBERS = {"NaN": math.nan, "-0": -0.0, "Infinity": math.inf, "-Infinity": -math.inf}


def to_local(value: Any) -> dict[str, Any]:
    """A Python value as a BiDi argument."""
    if isinstance(value, NodeRef):
        return {"sharedId": value.shared_id}
    if isinstance(value, list | tuple):
        return {"type": "array", "value": [to_local(item) for item in value]}
    if isinstance(value, dict):
        return {"type": "object", "value": [[str(key), to_local(item)] for key, item in value.items()]}
    kind = SCALARS.get(type(value))
    if kind is None or (isinstance(value, float) and not math.isfinite(value)):
        raise TypeError(f"cannot pass {value!r} to the page")
    return {"type": kind} if value is None else {"type": kind, "value": value}


def from_remote(remote: dict[str, Any]) -> Any:
    """A BiDi result as a Python value (elements become NodeRef; functions, windows and the like None)."""
    kind = remote.get("type")
    value = remote.get("value")
    if kind in {"array", "set"}:
        return [from_remote(item) for item in value or []]
    if kind in {"object", "map"}:
        return {(key if isinstance(key, str) else from_remote(key)): from_remote(item) for key, item in value or []}
    if kind == "node":
        return NodeRef(remote["sharedId"])
    if kind == "bigint":
        return int(value)
    if kind == "number" and isinstance(value, str):
        return SPECIAL_NUMBERS[value]
    return value if kind in {"string", "boolean", "number"} else None


# --- the connection ------------------------------------------------------------------------------


class Bidi:
    """One WebSocket to Firefox: a command waits for its answer (bounded); events go to listeners.

    A reader thread owns the receiving side, so that events (console errors) are collected while
    nobody waits for a command.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._stack = contextlib.ExitStack()
        self._socket: ClientConnection = self._stack.enter_context(
            connect(url, max_size=None, open_timeout=timeout, ping_interval=None, close_timeout=2)
        )
        self._lock = threading.Lock()
        self._next_id = 0
        self._waiting: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._listeners: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="firefox-bidi", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self._socket:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        answer = self._waiting.pop(message["id"], None)
                    if answer is not None:
                        answer.put(message)
                elif message.get("type") == "event":
                    for listener in list(self._listeners.get(message["method"], ())):
                        self._tell(listener, message["params"])
        except Exception:  # the socket closed under us: the waiting commands learn it below
            pass
        finally:
            self._closed.set()
            with self._lock:
                waiting, self._waiting = self._waiting, {}
            for answer in waiting.values():
                answer.put({"type": "error", "error": "connection closed", "message": "Firefox closed the connection"})

    @staticmethod
    def _tell(listener: Callable[[dict[str, Any]], None], params: dict[str, Any]) -> None:
        """A listener's mistake must not stop the reader (every later command would hang up)."""
        try:
            listener(params)
        except Exception as error:
            print(f"firefox-bidi: listener {listener!r} failed: {error!r}")

    def command(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30.0) -> dict[str, Any]:
        """Sends a command and returns its result; a refusal raises BidiError, silence TimeoutError."""
        answer: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        with self._lock:
            if self._closed.is_set():
                raise BidiError(f"{method}: the connection to Firefox is closed")
            self._next_id += 1
            number = self._next_id
            self._waiting[number] = answer
        self._socket.send(json.dumps({"id": number, "method": method, "params": params or {}}))
        try:
            message = answer.get(timeout=timeout)
        except queue.Empty:
            with self._lock:
                self._waiting.pop(number, None)
            raise TimeoutError(f"Firefox did not answer {method} within {timeout:g} s") from None
        if message.get("type") == "error":
            raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
        return message.get("result", {})

    def on(self, method: str, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.setdefault(method, []).append(listener)

    def close(self) -> None:
        self._stack.close()
        self._reader.join(timeout=5)


# --- the browser ---------------------------------------------------------------------------------


class Firefox:
    """A headless Firefox ESR on a throw-away profile; each page is isolated as a Playwright context is.

    Use as a context manager: leaving it closes the browser (killing it if it hangs) and removes
    the profile.
    """

    def __init__(self, *, log_dir: Path | None = None, startup_seconds: float = 60.0) -> None:
        executable = firefox_path()
        self._home = Path(tempfile.mkdtemp(prefix="vc-firefox-"))
        self.profile = self._home / "profile"
        self.profile.mkdir()
        (self.profile / "user.js").write_text(user_js(PREFS), encoding="utf-8")
        self.log_path = (log_dir or self._home) / "firefox.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-remote",
                "--remote-debugging-port=0",  # Firefox picks a free port and prints it
                "--profile",
                str(self.profile),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1", "MOZ_HEADLESS": "1"},
            start_new_session=True,
        )
        self.pages: list[FirefoxPage] = []
        self._by_context: dict[str, FirefoxPage] = {}
        self.front: str | None = None  # the window with the focus (a new one takes it)
        try:
            self.bidi = Bidi(self._endpoint(startup_seconds) + "/session")
            self.bidi.command("session.new", {"capabilities": {"alwaysMatch": {"unhandledPromptBehavior": "ignore"}}})
            self.bidi.command("session.subscribe", {"events": ["log.entryAdded"]})
            self.bidi.on("log.entryAdded", self._logged)
        except BaseException:
            self.close()
            raise

    def _endpoint(self, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log_path.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"Firefox did not start its WebDriver BiDi server:\n{self.log_path.read_text()[-3000:]}")

    def _logged(self, entry: dict[str, Any]) -> None:
        page = self._by_context.get(entry.get("source", {}).get("context", ""))
        if page is not None and entry.get("level") == "error":
            page.errors.append(f"{entry.get('type')}: {entry.get('text')}")

    def new_page(
        self,
        *,
        locale: str = "de-DE",
        viewport: dict[str, int] | None = None,
        cookies: Iterable[tuple[str, str, str]] = (),
        init_script: str | None = None,
    ) -> FirefoxPage:
        """A window in a user context of its own (cookies, storage); ``cookies`` as (name, value, url).

        ``init_script`` is a function declaration run in every document before the page's scripts.
        """
        user_context = self.bidi.command("browser.createUserContext")["userContext"]
        scope = {"userContexts": [user_context]}
        self.bidi.command("emulation.setLocaleOverride", {"locale": locale, **scope})
        # Accept-Language decides the server's language; the locale override alone does not send it.
        language = f"{locale},{locale.split('-', maxsplit=1)[0]};q=0.9"
        self.bidi.command(
            "network.setExtraHeaders",
            {"headers": [{"name": "Accept-Language", "value": {"type": "string", "value": language}}], **scope},
        )
        for name, value, url in cookies:
            self.bidi.command(
                "storage.setCookie",
                {
                    "cookie": {
                        "name": name,
                        "value": {"type": "string", "value": value},
                        "domain": urlsplit(url).hostname,
                        "path": "/",
                        "httpOnly": True,
                        "secure": urlsplit(url).scheme == "https",
                        "sameSite": "lax",
                    },
                    "partition": {"type": "storageKey", "userContext": user_context},
                },
            )
        if init_script is not None:
            self.bidi.command("script.addPreloadScript", {"functionDeclaration": init_script, **scope})
        # A window each, not a tab: a tab in the background is throttled and pauses its videos.
        created = self.bidi.command("browsingContext.create", {"type": "window", "userContext": user_context})
        context = created["context"]
        page = FirefoxPage(self, context, user_context)
        if viewport is not None:
            self.bidi.command("browsingContext.setViewport", {"context": context, "viewport": viewport})
        self.pages.append(page)
        self._by_context[context] = page
        self.front = context
        return page

    def close(self) -> None:
        """Closes the browser politely, then by force; removes the profile. Safe to call twice."""
        bidi: Bidi | None = getattr(self, "bidi", None)
        if bidi is not None and self.process.poll() is None:
            with contextlib.suppress(BidiError, TimeoutError, OSError):
                bidi.command("browser.close", timeout=10)
        if bidi is not None:
            with contextlib.suppress(Exception):
                bidi.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Content processes share the group: none may outlive the test.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
        shutil.rmtree(self._home, ignore_errors=True)  # the profile, and the log unless it went to log_dir

    def __enter__(self) -> Firefox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


# --- a page --------------------------------------------------------------------------------------

# The element a step acts on: the first match of ``selector`` whose text contains ``text``, or,
# with ``within``, the first match inside the first ``within`` whose text contains ``text``.
FIND = """(selector, within, text) => {
  const has = (node) => text === null || node.textContent.includes(text);
  if (within) {
    const scope = [...document.querySelectorAll(within)].find(has);
    return scope ? scope.querySelector(selector) : null;
  }
  return [...document.querySelectorAll(selector)].find(has) || null;
}"""
VISIBLE = "(node) => Boolean(node.getClientRects().length) && getComputedStyle(node).visibility !== 'hidden'"
STATE = f"""(selector, state) => {{
  const node = document.querySelector(selector);
  if (state === 'detached') return !node;
  if (state === 'attached') return Boolean(node);
  const visible = Boolean(node) && ({VISIBLE})(node);
  return state === 'hidden' ? !visible : visible;
}}"""
# Acts only on an element that is there, visible and enabled (as Playwright waits), else says why not.
CLICK = f"""(selector, within, text) => {{
  const node = ({FIND})(selector, within, text);
  if (!node) return 'not found';
  if (!({VISIBLE})(node)) return 'not visible';
  if (node.disabled) return 'disabled';
  node.scrollIntoView({{ block: 'center' }});
  node.click();
  return 'done';
}}"""
FILL = f"""(selector, value) => {{
  const node = ({FIND})(selector, null, null);
  if (!node) return 'not found';
  if (node.disabled || node.readOnly) return 'not editable';
  node.focus();
  node.value = value;
  node.dispatchEvent(new Event('input', {{ bubbles: true }}));
  node.dispatchEvent(new Event('change', {{ bubbles: true }}));
  return 'done';
}}"""
CHECK = f"""(selector) => {{
  const node = ({FIND})(selector, null, null);
  if (!node) return 'not found';
  if (node.disabled) return 'disabled';
  if (!node.checked) node.click();
  return node.checked ? 'done' : 'did not check';
}}"""


class FirefoxPage:
    """One Firefox window, with a subset of Playwright's Page API (timeouts in milliseconds)."""

    def __init__(self, browser: Firefox, context: str, user_context: str) -> None:
        self.browser = browser
        self.context = context
        self.user_context = user_context
        self.errors: list[str] = []  # console errors and uncaught exceptions, as they happen

    @property
    def url(self) -> str:
        return self.evaluate("() => window.location.href")

    def goto(self, url: str, *, timeout: float = 30_000) -> None:
        """Opens ``url`` in this window (brought to the front, as a person's window is) and waits for its load."""
        self.bring_to_front()
        self.browser.bidi.command(
            "browsingContext.navigate",
            {"context": self.context, "url": url, "wait": "complete"},
            timeout=timeout / 1000,
        )

    def evaluate(self, function: str, arg: Any = None, *, user_gesture: bool = False, timeout: float = 30_000) -> Any:
        """Calls ``function`` (a JavaScript function declaration) with ``arg``; awaits a returned promise."""
        result = self.browser.bidi.command(
            "script.callFunction",
            {
                "functionDeclaration": function,
                "arguments": [to_local(arg)],
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
                "userActivation": user_gesture,
            },
            timeout=timeout / 1000,
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise JavaScriptError(details.get("text") or json.dumps(details)[:500])
        return from_remote(result["result"])

    def _call(self, function: str, args: list[Any], *, user_gesture: bool = False) -> Any:
        spread = f"(args) => ({function})(...args)"
        return self.evaluate(spread, args, user_gesture=user_gesture)

    def _until(self, attempt: Callable[[], Any], timeout: float, what: str, *, done: Callable[[Any], bool]) -> Any:
        """Repeats ``attempt`` until ``done`` accepts its result; a navigation in between is survived."""
        deadline = time.monotonic() + timeout / 1000
        while True:
            try:
                last: Any = attempt()
            except BidiError as error:  # the document went away under the script: try the next one
                last = error
            else:
                if done(last):
                    return last
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Firefox: timed out after {timeout / 1000:g} s waiting for {what} (last: {last})")
            time.sleep(POLL_SECONDS)

    def bring_to_front(self) -> None:
        """Focuses this window, as a person's click or key press would.

        Firefox keeps some promises pending while a document has no focus (enumerateDevices, as
        the Media Capture spec asks), so a step in a window behind another must bring it forward.
        """
        if self.browser.front != self.context:
            self.browser.bidi.command("browsingContext.activate", {"context": self.context})
            self.browser.front = self.context

    def _act(self, function: str, args: list[Any], timeout: float, what: str) -> None:
        """A step that answers 'done' or why not yet (not found, not visible, disabled …), run as a user gesture."""
        self.bring_to_front()
        self._until(
            lambda: self._call(function, args, user_gesture=True), timeout, what, done=lambda result: result == "done"
        )

    def wait_for_function(self, function: str, *, arg: Any = None, timeout: float = 30_000) -> Any:
        """Polls ``function(arg)`` until it returns something truthy; returns that value."""
        return self._until(
            lambda: self.evaluate(function, arg, timeout=timeout), timeout, f"{function[:120]!r}", done=bool
        )

    def wait_for_selector(self, selector: str, *, state: str = "visible", timeout: float = 30_000) -> None:
        self._until(lambda: self._call(STATE, [selector, state]), timeout, f"{selector} to be {state}", done=bool)

    def click(
        self, selector: str, *, within: str | None = None, has_text: str | None = None, timeout: float = 30_000
    ) -> None:
        """Clicks as a person would (a user activation), once the element is there, visible and enabled.

        ``within`` and ``has_text`` pick the container: the first ``within`` containing ``has_text``;
        without ``within``, ``has_text`` filters the elements themselves.
        """
        self._act(CLICK, [selector, within, has_text], timeout, f"a click on {selector}")

    def fill(self, selector: str, value: str, *, timeout: float = 30_000) -> None:
        self._act(FILL, [selector, value], timeout, f"filling {selector}")

    def check(self, selector: str, *, timeout: float = 30_000) -> None:
        self._act(CHECK, [selector], timeout, f"checking {selector}")

    def inner_text(self, selector: str, *, timeout: float = 30_000) -> str:
        self.wait_for_selector(selector, state="attached", timeout=timeout)
        return self._call("(selector) => document.querySelector(selector).innerText", [selector])

    def set_input_files(self, selector: str, files: str | Path | list[str | Path], *, timeout: float = 30_000) -> None:
        """Chooses files in a file input as the picker would (BiDi input.setFiles fires input and change)."""
        paths = [str(Path(path).resolve()) for path in (files if isinstance(files, list) else [files])]
        self.bring_to_front()
        self.wait_for_selector(selector, state="attached", timeout=timeout)
        node = self._call("(selector) => document.querySelector(selector)", [selector])
        self.browser.bidi.command(
            "input.setFiles",
            {"context": self.context, "element": to_local(node), "files": paths},
            timeout=timeout / 1000,
        )

    def screenshot(self, *, path: str, full_page: bool = False) -> None:
        """A PNG of the window (or the whole document), for the gallery and for failures."""
        result = self.browser.bidi.command(
            "browsingContext.captureScreenshot",
            {"context": self.context, "origin": "document" if full_page else "viewport"},
        )
        Path(path).write_bytes(base64.b64decode(result["data"]))

    def close(self) -> None:
        """Closes the window and forgets its cookies and storage."""
        with contextlib.suppress(BidiError, TimeoutError):
            self.browser.bidi.command("browsingContext.close", {"context": self.context}, timeout=10)
        with contextlib.suppress(BidiError, TimeoutError):
            self.browser.bidi.command("browser.removeUserContext", {"userContext": self.user_context}, timeout=10)
        self.browser._by_context.pop(self.context, None)
        if self.browser.front == self.context:
            self.browser.front = None
        if self in self.browser.pages:
            self.browser.pages.remove(self)
