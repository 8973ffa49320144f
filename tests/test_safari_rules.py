"""The rules of docs/safari.md that can be checked by reading the client: Debian has no WebKit with
WebRTC, so no browser test runs Safari, and these checks keep what was written for it from
quietly going away. Each rule has a test that fails on a counter-example (``test_*_catches_*``),
so that a check that no longer matches anything cannot pass by accident.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vc_plugin"
SCRIPTS = PACKAGE / "static" / "vc_plugin" / "js"
TEMPLATES = PACKAGE / "templates"

# APIs that Safari (or Safari on iOS) lacks: each use needs a feature check before it.
OPTIONAL_APIS = (
    "navigator.connection",  # the Network Information API: Chromium only
    "getDisplayMedia",  # no screen sharing on iOS
    "setSinkId",  # choosing the speaker: Chromium (and newer Firefox) only
    "requestVideoFrameCallback",
    "Notification",  # iOS only in web apps added to the home screen
    "userAgentData",
    "requestIdleCallback",
    "wakeLock",
    "vibrate",
    "showSaveFilePicker",
    "showOpenFilePicker",
    "MediaStreamTrackProcessor",
    "MediaStreamTrackGenerator",
    "createEncodedStreams",
    "getBattery",
)
# How far before a use its feature check may be: the same statement or the few lines above it.
GUARD_REACH = 300
# A use guarded in another file, because that file offers the only way to reach it.
GUARDED_ELSEWHERE = {
    ("call.js", "getDisplayMedia"): "call_view.js",  # the share button is hidden without it
}


def strip_comments(source: str) -> str:
    """JavaScript without comments (a rule mentioned in a comment is no use of it)."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    return re.sub(r"(^|[\s;{}(),])//[^\n]*", r"\1", source)


def scripts() -> dict[str, str]:
    return {path.name: strip_comments(path.read_text(encoding="utf-8")) for path in sorted(SCRIPTS.rglob("*.js"))}


def templates() -> dict[str, str]:
    return {
        str(path.relative_to(TEMPLATES)): path.read_text(encoding="utf-8") for path in sorted(TEMPLATES.rglob("*.html"))
    }


# --- videos: inline, muted where local, a way to start the remote picture -------------------------

VIDEO_TAG = re.compile(r"<video\b([^>]*)>", re.IGNORECASE)
# el("video", { … }) in dom.js's helper: the attributes are the object literal.
VIDEO_EL = re.compile(r"(?:(?:const|let|var)\s+(\w+)\s*=\s*)?\bel\(\s*[\"']video[\"']\s*,\s*\{([^}]*)\}")


def video_problems_in_html(name: str, html: str) -> list[str]:
    problems = []
    for match in VIDEO_TAG.finditer(html):
        attributes = match.group(1)
        words = set(re.findall(r"[\w-]+", attributes))
        if "playsinline" not in words:
            problems.append(f"{name}: <video{attributes}> lacks playsinline (iOS would open the full-screen player)")
        local = words & {"data-preview", "data-local"}
        if local and "muted" not in words:
            problems.append(f"{name}: the local picture <video{attributes}> is not muted (no autoplay, and echo)")
        if "data-remote" in words and "muted" in words:
            problems.append(f"{name}: the remote picture <video{attributes}> is muted: the other side is not heard")
    return problems


def video_problems_in_js(name: str, source: str) -> list[str]:
    problems = video_problems_in_html(name, source)  # markup in strings, should there be any
    if re.search(r"createElement\(\s*[\"']video[\"']", source):
        problems.append(f"{name}: creates a <video> with createElement; use el('video', {{ playsinline: true, … }})")
    for match in VIDEO_EL.finditer(source):
        variable, attributes = match.group(1), match.group(2)
        given = set(re.findall(r"[\"']?([\w-]+)[\"']?\s*:\s*true", attributes)) | set(
            re.findall(r"[\"']([\w-]+)[\"']\s*:", attributes)
        )
        if "playsinline" not in given:
            problems.append(f"{name}: el('video', {{{attributes}}}) lacks playsinline: true")
        # The attribute alone does not mute an element made by script: the property must be set too.
        property_set = bool(variable and re.search(rf"\b{variable}\.muted\s*=\s*true", source))
        if given & {"data-local", "data-preview"} and not ("muted" in given and property_set):
            problems.append(f"{name}: the local video {variable or '?'} needs muted: true and .muted = true")
        if "data-remote" in given and "muted" in given:
            problems.append(f"{name}: a remote video is muted: the other side is not heard")
    return problems


def test_every_video_plays_inline_and_local_pictures_are_muted():
    problems = [p for name, html in templates().items() for p in video_problems_in_html(name, html)]
    problems += [p for name, source in scripts().items() for p in video_problems_in_js(name, source)]
    assert problems == []
    # Not vacuous: the client does make videos in both places.
    assert any(VIDEO_TAG.search(html) for html in templates().values())
    assert any(VIDEO_EL.search(source) for source in scripts().values())


def test_the_video_checks_catch_counter_examples():
    assert video_problems_in_html("t.html", '<video data-preview autoplay muted aria-label="x"></video>')
    assert video_problems_in_html("t.html", "<video data-preview autoplay playsinline></video>")
    assert video_problems_in_html("t.html", "<video data-remote autoplay playsinline muted></video>")
    assert not video_problems_in_html("t.html", "<video data-preview autoplay playsinline muted></video>")
    remote = 'const video = el("video", { autoplay: true, playsinline: true, "data-remote": peer.id });'
    local = 'const video = el("video", { autoplay: true, playsinline: true, muted: true, "data-local": true });'
    assert not video_problems_in_js("c.js", remote)
    assert video_problems_in_js("c.js", remote.replace("playsinline: true, ", ""))
    assert video_problems_in_js("c.js", remote.replace("playsinline: true,", "playsinline: true, muted: true,"))
    assert video_problems_in_js("c.js", local)  # the property is not set
    assert not video_problems_in_js("c.js", local + "\nvideo.muted = true;")
    assert video_problems_in_js("c.js", 'const v = document.createElement("video");')


PLAY = re.compile(r"\.play\(\)")


def play_problems(name: str, source: str) -> list[str]:
    """Safari refuses play() without a gesture in some cases: every call handles the refusal or runs on a click."""
    problems = []
    for match in PLAY.finditer(source):
        after = source[match.end() : match.end() + 20]
        before = source[max(0, match.start() - 160) : match.start()]
        on_click = "onclick" in before or re.search(r"addEventListener\(\s*[\"']click[\"']", before)
        if not re.match(r"\s*\.(catch|then)\(", after) and not on_click:
            line = source.count("\n", 0, match.start()) + 1
            problems.append(f"{name}:{line}: play() outside a click, and its refusal is not handled")
    return problems


def tap_to_play_problems(name: str, source: str) -> list[str]:
    """Where remote pictures are made, a refused play() reveals a button that starts it on a tap."""
    if not re.search(r"[\"']data-remote[\"']", source):
        return []
    problems = []
    if "tap_to_play" not in source:
        problems.append(f"{name}: remote videos without a tap-to-play button")
    if not re.search(r"\.play\(\)\.catch\(\s*\(\)\s*=>\s*\{[^}]*hidden\s*=\s*false", source):
        problems.append(f"{name}: a refused play() of a remote video does not reveal the tap-to-play button")
    return problems


def test_play_is_never_left_unhandled_and_remote_pictures_can_be_started_by_a_tap():
    files = scripts()
    problems = [p for name, source in files.items() for p in play_problems(name, source)]
    problems += [p for name, source in files.items() for p in tap_to_play_problems(name, source)]
    assert problems == []
    assert any(re.search(r"[\"']data-remote[\"']", source) for source in files.values())


def test_the_play_checks_catch_counter_examples():
    assert play_problems("c.js", "video.play();")
    assert not play_problems("c.js", "video.play().catch(() => {});")
    assert not play_problems("c.js", "el('button', { onclick: () => { video.play(); } })")
    remote = 'el("video", { "data-remote": id }); t("tap_to_play"); video.play().catch(() => { b.hidden = false; });'
    assert not tap_to_play_problems("c.js", remote)
    assert tap_to_play_problems("c.js", remote.replace('t("tap_to_play"); ', ""))
    assert tap_to_play_problems("c.js", remote.replace("b.hidden = false;", ""))


# --- APIs: feature checks, no vendor prefixes -------------------------------------------------------


def is_guard(source: str, start: int, end: int) -> bool:
    """Is the use at source[start:end] a feature check: ``"X" in``, ``typeof ….X``, ``….X)``/``&&``/``?.``?"""
    before = source[max(0, start - 40) : start]
    after = source[end : end + 12]
    if re.search(r"[\"']\s*$", before) and re.match(r"[\"']\s+in\b", after):
        return True
    if re.search(r"typeof\s+[\w.]*$", before):
        return True
    return bool(re.match(r"\s*(\)|&&|\|\||\?\.|\?(?!\?))", after))


def api_uses(api: str, source: str) -> list[re.Match[str]]:
    return list(re.finditer(rf"(?<![\w$]){re.escape(api)}(?![\w$])", source))


def guards(api: str, source: str) -> list[int]:
    """Where ``api`` is feature-checked: a guarding use, or ``"name" in …``."""
    short = api.rsplit(".", 1)[-1]
    found = [m.start() for m in api_uses(api, source) if is_guard(source, m.start(), m.end())]
    return found + [m.start() for m in re.finditer(rf"[\"']{short}[\"']\s+in\b", source)]


def api_problems(name: str, source: str, files: dict[str, str]) -> list[str]:
    """Each use needs a feature check close before it (the same statement or the lines just above)."""
    problems = []
    for api in OPTIONAL_APIS:
        uses = api_uses(api, source)
        if not uses:
            continue
        guarded_in = GUARDED_ELSEWHERE.get((name, api))
        if guarded_in is not None:
            if not guards(api, files.get(guarded_in, "")):
                problems.append(f"{name}: {api} relies on a feature check in {guarded_in}, which is gone")
            continue
        checks = guards(api, source)
        for use in uses:
            if is_guard(source, use.start(), use.end()):
                continue
            if not any(use.start() - GUARD_REACH <= check < use.start() for check in checks):
                line = source.count("\n", 0, use.start()) + 1
                problems.append(f"{name}:{line}: {api} is used without a feature check just before it")
    return problems


def test_apis_that_safari_lacks_are_used_only_after_a_feature_check():
    files = scripts()
    problems = [p for name, source in files.items() for p in api_problems(name, source, files)]
    assert problems == []
    # Not vacuous: the client does use some of them, behind checks.
    assert any(api_uses(api, source) for api in OPTIONAL_APIS for source in files.values())


def test_the_api_check_catches_counter_examples():
    files = {"v.js": "if (share && !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia)) hide();"}
    assert api_problems("c.js", 'navigator.connection.addEventListener("change", f);', files)
    assert not api_problems(
        "c.js", 'if (navigator.connection) navigator.connection.addEventListener("change", f);', files
    )
    assert not api_problems("c.js", 'navigator.connection?.addEventListener("change", f);', files)
    assert api_problems("c.js", "await context.setSinkId(id);", files)
    assert not api_problems("c.js", 'if (typeof context.setSinkId === "function") await context.setSinkId(id);', files)
    assert api_problems("c.js", "video.requestVideoFrameCallback(seen);", files)
    assert not api_problems(
        "c.js",
        'if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) video.requestVideoFrameCallback(f);',
        files,
    )
    assert api_problems("d.js", "new Notification(title);", files)
    assert not api_problems("d.js", 'if ("Notification" in window) new Notification(title);', files)
    far = 'if ("Notification" in window) notify();\n' + "x();\n" * 200 + "Notification.requestPermission();"
    assert api_problems("d.js", far, files)  # a check elsewhere in the file does not guard this use
    assert not api_problems("v.js", 'this.connection = $("[data-connection]", root);', files)
    share = "navigator.mediaDevices.getDisplayMedia({ video: true });"
    assert api_problems("call.js", share, {"call_view.js": ""}) == [
        "call.js: getDisplayMedia relies on a feature check in call_view.js, which is gone"
    ]
    assert not api_problems("call.js", share, {"call_view.js": files["v.js"]})
    assert api_problems("other.js", share, {"call_view.js": files["v.js"]})


VENDOR_PREFIXED = re.compile(r"(?<![\w$])(?:webkit|moz|ms)[A-Z]\w*|\bnavigator\.getUserMedia\b")


def test_no_vendor_prefixed_or_legacy_apis():
    """Prefixed names (webkitAudioContext, mozRTCPeerConnection …) and navigator.getUserMedia are
    gone or different in current Safari; the standard names work in every browser we support."""
    found = [f"{name}: {m.group(0)}" for name, source in scripts().items() for m in VENDOR_PREFIXED.finditer(source)]
    assert found == []
    for example in ("new webkitAudioContext()", "new mozRTCPeerConnection()", "navigator.getUserMedia(c, ok, no)"):
        assert VENDOR_PREFIXED.search(example), example
    assert not VENDOR_PREFIXED.search("new AudioContext(); navigator.mediaDevices.getUserMedia(c)")


# --- codecs, media permissions, statistics -----------------------------------------------------------

MUNGING = re.compile(r"setCodecPreferences|\bsdp\w*\)?\s*\.replace\(|a=rtpmap|a=fmtp")
SET_LOCAL = re.compile(r"\.setLocalDescription\(([^()]*(?:\([^()]*\))?[^()]*)\)")


def codec_problems(name: str, source: str) -> list[str]:
    """Codecs are left to the browsers' negotiation (H.264 and VP8 are common to all of them)."""
    problems = [f"{name}: {m.group(0)} (codecs restricted or SDP rewritten)" for m in MUNGING.finditer(source)]
    for match in SET_LOCAL.finditer(source):
        argument = match.group(1).strip()
        if argument and not re.fullmatch(r"await\s+[\w.]+\.create(Offer|Answer)\([^()]*\)", argument):
            problems.append(f"{name}: setLocalDescription({argument}) is not the browser's own description")
    return problems


def test_codecs_are_left_to_negotiation():
    files = scripts()
    assert [p for name, source in files.items() for p in codec_problems(name, source)] == []
    assert any(SET_LOCAL.search(source) for source in files.values())


def test_the_codec_check_catches_counter_examples():
    assert codec_problems("c.js", 'transceiver.setCodecPreferences(codecs.filter((c) => c.mimeType === "video/VP9"));')
    assert codec_problems("c.js", 'const sdp = offer.sdp.replace("VP8", "VP9");')
    assert codec_problems("c.js", "await pc.setLocalDescription({ type: 'offer', sdp: munged });")
    assert not codec_problems("c.js", "await pc.setLocalDescription();")
    assert not codec_problems("c.js", "await pc.setLocalDescription(await pc.createOffer());")


def media_problems(files: dict[str, str]) -> list[str]:
    """The camera is opened through openMedia, which reports a missing mediaDevices (an insecure
    origin in Safari) as a reason to explain, or later by a person's click (switching cameras)."""
    problems = []
    devices = files.get("devices.js", "")
    guard = re.search(r"!\s*navigator\.mediaDevices\s*\|\|", devices)
    first_call = devices.find("getUserMedia(")
    if not guard or first_call < guard.start() or "isSecureContext" not in devices:
        problems.append("devices.js: openMedia must check navigator.mediaDevices (and isSecureContext) first")
    for name, source in files.items():
        if name != "devices.js" and "getUserMedia(" in source and not re.search(r"switchCamera\s*\(", source):
            problems.append(f"{name}: calls getUserMedia itself instead of openMedia (devices.js)")
    return problems


def test_the_camera_is_opened_only_after_the_secure_origin_check_or_by_a_click():
    assert media_problems(scripts()) == []


def test_the_media_check_catches_counter_examples():
    devices = (
        "if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { window.isSecureContext; }\n"
        "navigator.mediaDevices.getUserMedia(c);"
    )
    assert not media_problems({"devices.js": devices})
    assert media_problems({"devices.js": devices.split("\n")[1]})
    assert media_problems({"devices.js": devices, "room.js": "navigator.mediaDevices.getUserMedia({ video: true });"})


def test_device_names_have_a_fallback_before_permission():
    """Safari lists devices without labels until the camera was allowed: the list shows "Camera 1"."""
    sources = [source for source in scripts().values() if re.search(r"\.label\b", source)]
    assert sources
    for source in sources:
        assert re.search(r"\.label\s*\|\|", source), "a device label is shown without a fallback"


def test_statistics_do_not_rely_on_chromium_only_fields():
    """Firefox (and any browser without RTCTransportStats) has no selectedCandidatePairId: the
    connection indicator must fall back to the nominated pair that succeeded."""
    for name, source in scripts().items():
        if "selectedCandidatePairId" in source:
            assert re.search(r"\.nominated\b", source), f"{name}: no fallback for selectedCandidatePairId"


@pytest.mark.parametrize("name", ["call.js", "call_view.js", "devices.js", "room.js", "practitioner_call.js"])
def test_the_checked_scripts_exist(name):
    """The rules above read these files: a rename must not make them pass by reading nothing."""
    assert name in scripts()
