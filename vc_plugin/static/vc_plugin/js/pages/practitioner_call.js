// The practitioner's call page: own devices, the call, and this appointment's waiting list.

import { CallSession } from "../call.js";
import { CallView } from "../call_view.js";
import { DeviceCheck } from "../device_check.js";
import { deviceNote } from "../device_note.js";
import { $, announce, el, show } from "../dom.js";
import { Signal } from "../signal.js";
import { pageData, t } from "../strings.js";

const root = document.getElementById("vc-practitioner-call");
const config = pageData("vc-config");
const tickets = { ticketUrl: config.socketTicket, csrf: config.csrf };
const room = new Signal(config.socket, tickets);
const queue = new Signal(config.queueSocket, tickets);
const status = $("[data-status]", root);
const waitingList = $("[data-waiting]", root);
let session = null;
let view = null;
let pendingAdmit = config.admit || null;

/** Lists are rebuilt on every change (someone's connection flickers): the keyboard stays where it was. */
function keepFocus(rebuild) {
  const active = document.activeElement;
  const row = active?.dataset.action ? active.closest("[data-member]") : null;
  rebuild();
  if (!row) return;
  const selector = `[data-member="${CSS.escape(row.dataset.member)}"] [data-action="${active.dataset.action}"]`;
  if (!active.isConnected) $(selector, root)?.focus();
}

function render(members) {
  keepFocus(() => build(members));
  focusReadmit();
}

function build(members) {
  const waiting = members.filter((member) => member.state === "waiting");
  waitingList.replaceChildren(...waiting.map((member) => el("li", { class: "vc-member", "data-member": member.id,
    "data-presence": member.offline ? "offline" : "online" }, [
    el("span", { class: "vc-member-name", text: member.name }),
    el("span", { class: "vc-hint", text: ` ${t(`kind_${member.kind}`)}${member.offline ? ` · ${t("member_offline")}` : ""}` }),
    deviceNote(member),
    el("button", { type: "button", class: "vc-button vc-primary", text: t("admit"), "data-action": "admit",
      onclick: () => admit(member.id) }),
    el("button", { type: "button", class: "vc-button", text: t("decline"), "data-action": "decline",
      onclick: () => queue.send({ type: "decline", appointment: config.appointment, participant: member.id }) }),
  ])));
  show($("[data-empty]", root), waiting.length === 0);
  renderInCall(members);
  offerHandover(members);
}

// Issue 17: each participant in the call can be sent back to the waiting room (docs/signaling.md,
// "Back to the waiting room"); the server ends their connections, admitting again reconnects.
const inCallList = $("[data-in-call]", root);
let sentBack = null;

function renderInCall(members) {
  const inCall = members.filter((member) => member.state === "admitted" && member.role !== "practitioner");
  inCallList.replaceChildren(...inCall.map((member) => el("li", { class: "vc-member", "data-member": member.id }, [
    el("span", { class: "vc-member-name", text: member.name }),
    el("span", { class: "vc-hint", text: ` ${t(`kind_${member.kind}`)}` }),
    el("button", { type: "button", class: "vc-button", text: t("send_back"), "data-send-back": member.id, "data-action": "send-back",
      "aria-label": t("send_back_label", { name: member.name }), onclick: () => sendBack(member.id) }),
  ])));
  show($("[data-in-call-box]", root), inCall.length > 0);
}

function sendBack(memberId) {
  sentBack = memberId;
  queue.send({ type: "send-back", appointment: config.appointment, participant: memberId });
}

/** The button that sent someone back is gone: the keyboard goes on at that person's Admit button. */
function focusReadmit() {
  if (!sentBack) return;
  const admitButton = $(`[data-member="${CSS.escape(sentBack)}"] .vc-primary`, waitingList);
  if (!admitButton) return;
  sentBack = null;
  if (!document.activeElement || document.activeElement === document.body) admitButton.focus();
}

/** A handover moves everyone waiting to the colleague: only offered while nobody else is in the call. */
function offerHandover(members) {
  const form = $("[data-handover-form]", root);
  if (!form) return;
  const busy = members.some((member) => member.state === "admitted" && member.role !== "practitioner");
  show(form, !busy);
  show($("[data-handover-blocked]", root), busy);
}

$("[data-handover-form] form", root)?.addEventListener("submit", (event) => {
  event.preventDefault();
  const practitioner = $("[data-handover-to]", root).value;
  queue.send({ type: "handover", appointment: config.appointment, practitioner });
});

let members = [];
function admit(memberId) {
  queue.send({ type: "admit", appointment: config.appointment, participant: memberId });
}

// People waiting for the practitioner's other appointments, by appointment: shown as one quiet line.
const elsewhere = new Map();
const clockFormat = new Intl.DateTimeFormat(document.documentElement.lang, { hour: "2-digit", minute: "2-digit", timeZone: config.timeZone });

function noteRoom(room) {
  if (room.appointment === config.appointment) return;
  const waiting = new Set(room.members.filter((m) => m.state === "waiting").map((m) => m.id));
  elsewhere.set(room.appointment, { startsAt: room.starts_at, waiting });
}

function renderElsewhere() {
  const parts = [...elsewhere.values()].filter((entry) => entry.waiting.size > 0)
    .sort((a, b) => a.startsAt - b.startsAt)
    .map((entry) => {
      const time = t("clock_time", { time: clockFormat.format(new Date(entry.startsAt * 1000)) });
      return entry.waiting.size === 1 ? t("elsewhere_one", { time }) : t("elsewhere_many", { time, count: entry.waiting.size });
    });
  const line = $("[data-elsewhere]", root);
  const text = parts.length ? `${t("elsewhere_title")} ${parts.join("; ")}` : "";
  if ($("[data-elsewhere-text]", line).textContent !== text && text) announce(status, text);
  $("[data-elsewhere-text]", line).textContent = text;
  show(line, parts.length > 0);
}

queue.on("queue", (message) => {
  elsewhere.clear();
  message.rooms.forEach(noteRoom);
  renderElsewhere();
  const mine = message.rooms.find((r) => r.appointment === config.appointment);
  members = mine ? mine.members : [];
  render(members);
  if (pendingAdmit && members.some((m) => m.id === pendingAdmit && m.state === "waiting")) {
    admit(pendingAdmit);
    pendingAdmit = null;
  }
});
queue.on("queue-update", (update) => {
  if (update.appointment !== config.appointment) {
    const other = elsewhere.get(update.appointment);
    if (update.op === "arrived" && update.room) noteRoom(update.room);
    else if (other && ["admitted", "left"].includes(update.op)) other.waiting.delete(update.member_id);
    else if (other && update.op === "in-call") other.waiting.delete(update.member.id);
    renderElsewhere();
    return;
  }
  if (update.op === "arrived" && update.room) {
    members = update.room.members;
    announce(status, t("new_arrival", { name: update.member.name }));
  } else if (update.op === "in-call") {
    members = members.filter((m) => m.id !== update.member.id).concat([update.member]);
  } else if (update.op === "admitted") {
    members = members.map((m) => (m.id === update.member_id ? { ...m, state: "admitted" } : m));
  } else if (update.op === "sent-back") {
    const member = members.find((m) => m.id === update.member_id);
    members = members.map((m) => (m.id === update.member_id ? { ...m, state: "waiting" } : m));
    if (member) announce(status, t("sent_back_done", { name: member.name }));
  } else if (update.op === "offline") {
    members = members.map((m) => (m.id === update.member_id ? { ...m, offline: true } : m));
  } else if (update.op === "left") {
    members = members.filter((m) => m.id !== update.member_id);
  }
  render(members);
});

room.on("welcome", (message) => {
  if (session) {
    message.peers.filter((peer) => !session.links.has(peer.id)).forEach((peer) => session.connectTo(peer));
    return;
  }
  session = new CallSession(room, check.stream || new MediaStream(), message);
  view = new CallView($("[data-call]", root), session, { onLeave: askToEnd });
  session.on("peer-known", ({ peer }) => announce(status, t("joined", { name: peer.name })));
  message.peers.forEach((peer) => session.connectTo(peer));
  show($("[data-call]", root), true);
  show($("[data-check]", root), false);
  queue.join();
});
room.on("ended", () => closeCall());
// Handed to a colleague from here: the server closed this call; the colleague admits the people waiting.
room.on("handed-over", (message) => {
  const text = t("handed_over_to", { name: message.practitioner_name });
  closeCall(text);
  $("[data-after] h2", root).textContent = text;
});
// Signed out elsewhere, or the appointment is gone: the page itself says what is left.
room.on("revoked", () => window.location.reload());
queue.on("revoked", () => window.location.reload());
room.on("error", (message) => {
  if (message.code === "revoked") window.location.reload(); // no sign-in any more (a refused ticket)
  // Opened again in another tab: this one lets go of camera and call.
  if (message.code === "replaced") {
    if (view) view.close(t("error_replaced"));
    queue.leave();
    show($("[data-call]", root), false);
  }
  announce(status, t(`error_${message.code}`));
});
queue.on("error", (message) => {
  if (message.code === "revoked") window.location.reload();
  else announce(status, t(`error_${message.code}`));
});

function end() {
  room.send({ type: "end", appointment: config.appointment });
}

// "End for everyone" cannot be taken back, so it asks first; Escape or "Keep talking" change nothing.
const endDialog = $("[data-end-dialog]", root);
function askToEnd() {
  if (!endDialog.open) endDialog.showModal();
}
$("[data-end-cancel]", endDialog).addEventListener("click", () => endDialog.close());
$("[data-end-confirm]", endDialog).addEventListener("click", () => {
  endDialog.close();
  end();
});

function closeCall(why = t("ended_title")) {
  if (view) view.close(why);
  queue.leave();
  show($("[data-call]", root), false);
  show($("[data-after]", root), true);
  $("[data-after] h2", root)?.focus();
}

$("[data-notice-form]", root)?.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("[data-notice-input]", root);
  queue.send({ type: "notice", appointment: config.appointment, text: input.value });
  announce(status, t("notice_sent"));
});

// KBV Anlage 31b: the practitioner confirms once that everyone present was introduced. The server
// records it (an audit event without names) and answers the time; a second confirmation records nothing.
const introductions = $("[data-introductions]", root);
introductions?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("[data-introductions-button]", introductions);
  const error = $("[data-introductions-error]", introductions);
  if (button.getAttribute("aria-checked") === "true" || button.getAttribute("aria-busy") === "true") return;
  button.setAttribute("aria-busy", "true");
  show(error, false);
  try {
    const response = await fetch(introductions.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": introductions.elements.csrf_token.value,
      },
      body: "{}",
    });
    if (!response.ok) throw new Error(`status ${response.status}`);
    const answer = await response.json();
    button.setAttribute("aria-checked", "true");
    button.setAttribute("aria-disabled", "true");
    $("[data-introductions-hint]", introductions).textContent = t("introductions_confirmed_at", { time: answer.time });
  } catch {
    announce(error, t("introductions_failed"));
    show(error, true);
  } finally {
    button.removeAttribute("aria-busy");
  }
});

const check = new DeviceCheck($("[data-check]", root), room, config.stun || []);
room.connect();
queue.connect();
check.start();
const startButton = $("[data-start]", root);

async function start() {
  startButton.disabled = true;
  await check.settled(); // the devices last chosen, not necessarily those of the first check
  check.stop();
  room.join();
}

startButton.addEventListener("click", start);
// Reloaded during the consultation: the devices were checked already, so go straight back into
// the running call (the patient's page does the same).
if (room.resumable) start();
