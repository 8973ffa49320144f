// The patient's page: device check, waiting room and call over one signalling connection.

import { CallSession } from "../call.js";
import { CallView } from "../call_view.js";
import { DeviceCheck } from "../device_check.js";
import { $, announce, el, show } from "../dom.js";
import { Signal } from "../signal.js";
import { pageData, t } from "../strings.js";

const root = document.getElementById("vc-room");
const config = pageData("vc-config");
const tickets = { ticketUrl: config.socketTicket, csrf: config.csrf };
const signal = new Signal(config.socket, tickets);
const views = ["check", "waiting", "call", "ended"].map((name) => [name, $(`[data-view=${name}]`, root)]);
const status = $("[data-status]", root);
let welcome = null;
let session = null;
let view = null;
let stream = null;

function showView(name) {
  for (const [key, node] of views) show(node, key === name);
  root.dataset.view = name;
  // Looked up in the view itself: "[data-view=…] h1" would also match below the root, which
  // carries the same attribute, and find the first (hidden) view's heading.
  const heading = $("h1, h2", views.find(([key]) => key === name)[1]);
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

function finish(titleKey, textKey) {
  if (view) view.close("");
  else if (stream) stream.getTracks().forEach((track) => track.stop());
  $("[data-end-title]", root).textContent = t(titleKey);
  $("[data-end-text]", root).textContent = t(textKey);
  showView("ended");
}

function estimated(message) {
  const startsAt = new Date(message.appointment.starts_at * 1000);
  return t("clock_time", { time: startsAt.toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit", timeZone: config.timeZone }) });
}

function waitingText(message) {
  if (message.position > 1) return t("waiting_position", { position: message.position, time: estimated(message) });
  return t("waiting_next", { time: estimated(message) });
}

// The probable wait, counted down here from the server's figure (seconds, so no clock needs to agree).
let expected = null;

function showEstimate() {
  const line = $("[data-estimate]", root);
  if (!expected) {
    line.textContent = "";
    return;
  }
  const minutes = Math.ceil((expected.inSeconds - (performance.now() - expected.heardAt) / 1000) / 60);
  const late = expected.lateMinutes ? `${t("running_late", { minutes: expected.lateMinutes })} ` : "";
  let text;
  if (minutes > 2) text = t("estimate_minutes", { minutes: minutes > 10 ? Math.round(minutes / 5) * 5 : minutes });
  else if (minutes > -5) text = t("estimate_soon");
  else text = t("estimate_overdue"); // honest once the estimate has passed, never a time in the past
  line.textContent = late + text;
}

function noteEstimate(message) {
  if (typeof message.expected_in !== "number") return;
  expected = { inSeconds: message.expected_in, lateMinutes: message.late_minutes || 0, heardAt: performance.now() };
  showEstimate();
}

window.setInterval(showEstimate, 30000);

/** A small mirrored picture of oneself while waiting, and a switch to enter the call with the camera off. */
function showSelfView() {
  const box = $("[data-self-view]", root);
  const camera = session.cameraTrack;
  show(box, Boolean(camera));
  if (!camera) return;
  const video = $("[data-self-video]", box);
  if (video.srcObject !== session.localStream) video.srcObject = session.localStream;
  video.play().catch(() => {});
  const off = session.cameraOff;
  const button = $("[data-self-camera]", box);
  button.setAttribute("aria-pressed", String(off));
  button.textContent = off ? t("camera_on") : t("camera_off");
  $(".vc-self-picture", box).dataset.camera = off ? "off" : "on";
  show($("[data-self-off]", box), off);
}

$("[data-self-camera]", root)?.addEventListener("click", () => {
  if (!view) return;
  view.setCameraOff(!session.cameraOff);
  showSelfView();
});

function startCall() {
  if (!session || root.dataset.view === "call") return; // back after a drop: no focus jump, no announcement
  const selfVideo = $("[data-self-video]", root);
  if (selfVideo) selfVideo.srcObject = null; // the call shows the own picture in its own tile
  showView("call");
  announce(status, t("admitted"));
}

signal.on("welcome", (message) => {
  welcome = message;
  if (!session) {
    session = new CallSession(signal, stream || new MediaStream(), message);
    view = new CallView($("[data-view=call]", root), session, { onLeave: leave });
  } else {
    // Back after a reconnect: connect to participants we do not know yet.
    message.peers.filter((peer) => !session.links.has(peer.id)).forEach((peer) => session.connectTo(peer));
  }
  $("[data-notice]", root).textContent = message.notice || "";
  show($("[data-notice-box]", root), Boolean(message.notice));
  if (message.state === "admitted") {
    message.peers.forEach((peer) => session.connectTo(peer));
    startCall();
  } else {
    showView("waiting");
    showSelfView();
    $("[data-position]", root).textContent = waitingText(message);
    noteEstimate(message);
    const asked = message.asked_to_wait_by ? noteSentBack(message.asked_to_wait_by) : "";
    announce(status, [asked, waitingText(message)].filter(Boolean).join(" "));
  }
});
signal.on("admitted", () => {
  sentBackNote()?.remove();
  startCall();
});

// Issue 17: the practitioner asked this person to wait in the waiting room again. The server relays
// nothing either way now; every peer connection closes here too, the place in the queue is shown,
// and "admitted" later reconnects as the first time.
function sentBackNote() {
  return $("[data-sent-back]", root);
}

// Shown again after a reload while still waiting (the welcome says who asked); returns its words.
function noteSentBack(practitionerName) {
  const text = t("sent_back", { name: practitionerName });
  const note = sentBackNote() || el("p", { class: "vc-notice", "data-sent-back": "" });
  note.textContent = text;
  if (!note.isConnected) $("[data-position]", root).before(note);
  return text;
}

signal.on("sent-back", (message) => {
  if (session) [...session.links.keys()].forEach((peerId) => session.drop(peerId));
  const text = noteSentBack(message.practitioner_name);
  const position = $("[data-position]", root);
  position.textContent = message.position > 1 ? t("sent_back_position", { position: message.position }) : t("sent_back_next");
  showView("waiting");
  announce(status, `${text} ${position.textContent}`);
});
signal.on("notice", (message) => {
  $("[data-notice]", root).textContent = message.text || "";
  show($("[data-notice-box]", root), Boolean(message.text));
});
signal.on("schedule", (message) => {
  const before = $("[data-estimate]", root).textContent;
  noteEstimate(message);
  const now = $("[data-estimate]", root).textContent;
  if (now !== before && root.dataset.view === "waiting") announce(status, now);
});
signal.on("handed-over", (message) => announce(status, t("handed_over", { name: message.practitioner_name })));
signal.on("reconnecting", () => {
  announce(status, t("reconnecting"));
  // Seen too, not only heard: the place is kept while the page reconnects by itself.
  if (root.dataset.view === "waiting") $("[data-position]", root).textContent = t("reconnecting");
});
signal.on("ended", () => finish("ended_title", "ended_text"));
signal.on("declined", () => finish("declined_title", "declined_text"));
// Why the server closed this access for good (docs/signaling.md, "Revocation").
const REVOKED = {
  ended: "ended",
  new_code: "new_code",
  replaced: "replaced",
  participant_removed: "removed",
};
signal.on("revoked", (message) => {
  const key = REVOKED[message.reason] || "cancelled";
  finish(`${key}_title`, `${key}_text`);
});
signal.on("error", (message) => {
  if (message.code === "replaced") finish("replaced_title", "replaced_text");
  else if (message.code === "expired") finish("expired_title", "expired_text");
  // The pass is gone (a socket ticket was refused): the page, loaded again, says what is left.
  else if (message.code === "revoked") window.location.reload();
  // Other refusals of a ticket end the connection too: said where the page says how it is connected.
  else if (["invalid", "not_allowed", "unknown_room"].includes(message.code)) announce(status, t(`error_${message.code}`));
});

function leave() {
  signal.leave();
  finish("left_title", "left_text");
}

$("[data-leave-waiting]", root)?.addEventListener("click", leave);

const check = new DeviceCheck($("[data-view=check]", root), signal, config.stun || []);
const ready = $("[data-ready]", root);
// Without a microphone the consultation cannot work: "Try again" becomes the main button then,
// and the waiting room stays open as the second choice (the practice can still call by phone).
let checked = null; // what the check found last: told to the practitioner with "hello"
check.onResult = ({ camera, microphone }) => {
  checked = { camera, microphone };
  ready.classList.toggle("vc-primary", microphone);
  $("[data-retry]", root)?.classList.toggle("vc-primary", !microphone);
};
signal.connect();
showView("check");
check.start();

async function enter() {
  ready.disabled = true;
  stream = await check.settled(); // the devices last chosen, not necessarily those of the first check
  check.stop();
  announce(status, t("joining"));
  signal.join(checked ? { devices: checked } : {});
}

ready.addEventListener("click", enter);
// Reloaded in this tab after entering (a language switch, say): the devices were checked
// already, so go straight back to the same place in the waiting room or the call.
if (signal.resumable) enter();
