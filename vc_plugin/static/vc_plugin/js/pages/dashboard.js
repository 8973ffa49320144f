// The practitioner's and staff's live waiting list: who waits for which appointment, since when.

import { deviceNote } from "../device_note.js";
import { $, announce, el, show } from "../dom.js";
import { Signal } from "../signal.js";
import { pageData, t } from "../strings.js";

const root = document.getElementById("vc-queue");
const config = pageData("vc-config");
const tickets = { ticketUrl: config.socketTicket, csrf: config.csrf };
const signal = new Signal(config.socket, tickets);
const list = $("[data-rooms]", root);
const status = $("[data-status]", root);
const baseTitle = document.title;
let rooms = new Map();
let unseen = 0;

function minutesSince(seconds) {
  return Math.max(0, Math.round((Date.now() / 1000 - seconds) / 60));
}

function bareClock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit", timeZone: config.timeZone });
}

/** A time of day as people say it ("10:05 Uhr"); a span says "Uhr" once, at its end. */
function clock(seconds) {
  return t("clock_time", { time: bareClock(seconds) });
}

function callUrl(appointment, member) {
  const url = config.callUrl.replace("APPOINTMENT", encodeURIComponent(appointment));
  return member ? `${url}?admit=${encodeURIComponent(member)}` : url;
}

function memberRow(room, member) {
  const isPractitioner = config.role !== "staff";
  const ownRoom = room.practitioner === config.me;
  const state = member.offline ? t("member_offline") : member.state === "admitted" ? t("member_in_call") : t("waiting_since", { minutes: minutesSince(member.since) });
  const actions = [];
  if (member.state === "waiting" && isPractitioner && ownRoom) {
    actions.push(el("a", { class: "vc-button vc-primary", href: callUrl(room.appointment, member.id), text: t("admit_and_call"), "data-key": `admit:${member.id}` }));
    actions.push(el("button", { type: "button", class: "vc-button", text: t("decline"), "data-key": `decline:${member.id}`,
      onclick: () => signal.send({ type: "decline", appointment: room.appointment, participant: member.id }) }));
  }
  return el("li", { class: `vc-member${member.fresh ? " vc-new" : ""}`, "data-member": member.id, "data-state": member.state,
    "data-presence": member.offline ? "offline" : "online" }, [
    el("span", { class: "vc-member-name", text: member.role === "practitioner" ? `${member.name} (${t("practitioner")})` : member.name }),
    el("span", { class: "vc-hint", text: ` ${t(`kind_${member.kind}`)} · ${state}` }),
    member.state === "waiting" ? deviceNote(member) : null,
    el("span", { class: "vc-actions" }, actions),
  ]);
}

function handoverForm(room) {
  if (config.role === "practitioner" && room.practitioner !== config.me) return null;
  const options = config.colleagues.filter((c) => c.id !== room.practitioner)
    .map((c) => el("option", { value: c.id, text: c.name }));
  if (!options.length) return null;
  const select = el("select", { "aria-label": t("handover_to"), "data-key": `handover-to:${room.appointment}` }, options);
  return el("form", { class: "vc-inline-form", onsubmit: (event) => {
    event.preventDefault();
    signal.send({ type: "handover", appointment: room.appointment, practitioner: select.value });
  } }, [el("label", { text: t("handover_to") }), select, el("button", { type: "submit", class: "vc-button", text: t("handover"), "data-key": `handover:${room.appointment}` })]);
}

function noticeForm(room) {
  const input = el("input", { type: "text", maxlength: 500, value: room.notice || "", "aria-label": t("notice_label"), placeholder: t("notice_placeholder"), "data-key": `notice:${room.appointment}` });
  return el("form", { class: "vc-inline-form", onsubmit: (event) => {
    event.preventDefault();
    signal.send({ type: "notice", appointment: room.appointment, text: input.value });
    announce(status, t("notice_sent"));
  } }, [input, el("button", { type: "submit", class: "vc-button", text: t("send_notice"), "data-key": `send-notice:${room.appointment}` })]);
}

/** Rebuilding the list must not take the focus, a half-written message or an opened section from a keyboard user. */
function keepFocus(rebuild) {
  const active = document.activeElement;
  const focused = active && list.contains(active) ? active.dataset.key : null;
  const opened = new Set([...list.querySelectorAll("details[open][data-key]")].map((node) => node.dataset.key));
  // Only what the person changed and did not send yet: a select's choice, a text differing from the shown one.
  const drafts = new Map([...list.querySelectorAll("input[data-key], select[data-key]")]
    .filter((field) => field.tagName === "SELECT" || field.value !== field.defaultValue)
    .map((field) => [field.dataset.key, field.value]));
  rebuild();
  for (const node of list.querySelectorAll("details[data-key]")) node.open = opened.has(node.dataset.key);
  for (const field of list.querySelectorAll("input[data-key], select[data-key]")) {
    const draft = drafts.get(field.dataset.key);
    if (draft === undefined) continue;
    if (field.tagName === "SELECT" && ![...field.options].some((option) => option.value === draft)) continue;
    field.value = draft;
  }
  const again = focused && [...list.querySelectorAll("[data-key]")].find((node) => node.dataset.key === focused);
  if (again) again.focus();
}

function render() {
  keepFocus(build);
}

/** A message to the waiting room and the handover: used now and then, so folded away under the people. */
function roomTools(room) {
  const forms = [noticeForm(room), handoverForm(room)].filter(Boolean);
  return el("details", { class: "vc-room-tools", "data-key": `tools:${room.appointment}` }, [
    el("summary", { text: forms.length > 1 ? t("room_tools") : t("notice_label") }), ...forms,
  ]);
}

function build() {
  // Only rooms someone is in: an open appointment nobody came to yet is in "Today" below, not a card here.
  const items = [...rooms.values()].filter((room) => room.members.length > 0).sort((a, b) => a.starts_at - b.starts_at);
  list.replaceChildren(...items.map((room) => el("li", { class: "vc-room-card", "data-appointment": room.appointment }, [
    el("div", { class: "vc-row" }, [
      el("h3", { text: `${bareClock(room.starts_at)}–${clock(room.ends_at)}${config.role !== "practitioner" ? ` · ${room.practitioner_name}` : ""}` }),
      room.practitioner === config.me ? el("a", { class: "vc-button", href: callUrl(room.appointment), text: t("open_call"), "data-key": `call:${room.appointment}` }) : null,
    ]),
    el("ul", { class: "vc-members" }, room.members.map((m) => memberRow(room, m))),
    roomTools(room),
  ])));
  show($("[data-empty]", root), items.length === 0);
  const waiting = items.reduce((sum, room) => sum + room.members.filter((m) => m.state === "waiting").length, 0);
  document.title = waiting ? `(${waiting}) ${baseTitle}` : baseTitle;
}

function alertArrival(member) {
  unseen += 1;
  announce(status, t("new_arrival", { name: member.name }));
  if (config.notify && "Notification" in window && Notification.permission === "granted" && document.hidden) {
    new Notification(t("new_arrival_title"), { body: t("new_arrival", { name: member.name }), silent: true });
  }
}

/** The delay the waiting rooms show now: one button pressed. */
function showLate(minutes) {
  for (const button of root.querySelectorAll("[data-late-minutes]")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.lateMinutes) === minutes));
  }
}

for (const button of root.querySelectorAll("[data-late-minutes]")) {
  button.addEventListener("click", () => signal.send({ type: "running-late", minutes: Number(button.dataset.lateMinutes) }));
}

signal.on("running-late", ({ minutes }) => {
  showLate(minutes);
  announce(status, minutes ? t("late_announced", { minutes }) : t("late_taken_back"));
});

signal.on("queue", (message) => {
  if (typeof message.running_late === "number") showLate(message.running_late);
  rooms = new Map(message.rooms.map((room) => [room.appointment, room]));
  render();
  list.removeAttribute("aria-busy"); // the list is live from now on
});
signal.on("queue-update", (update) => {
  const room = rooms.get(update.appointment);
  if (update.op === "handover" && update.room) {
    rooms.set(update.appointment, update.room);
  } else if (update.op === "handover" && room) {
    if (config.role === "practitioner" && update.practitioner !== config.me) rooms.delete(update.appointment);
    else Object.assign(room, { practitioner: update.practitioner, practitioner_name: update.practitioner_name });
  } else if (update.op === "ended") {
    rooms.delete(update.appointment);
  } else if (update.op === "arrived" && update.room) {
    const fresh = update.room;
    fresh.members = fresh.members.map((m) => (m.id === update.member.id ? { ...m, fresh: true } : m));
    rooms.set(update.appointment, fresh);
    alertArrival(update.member);
  } else if (room) {
    const others = room.members.filter((m) => m.id !== (update.member ? update.member.id : update.member_id));
    if (update.op === "in-call") {
      room.members = others.concat([update.member]);
    } else if (update.op === "admitted") {
      room.members = room.members.map((m) => (m.id === update.member_id ? { ...m, state: "admitted" } : m));
    } else if (update.op === "sent-back") { // from the call back to the waiting room (issue 17)
      room.members = room.members.map((m) => (m.id === update.member_id ? { ...m, state: "waiting" } : m));
    } else if (update.op === "offline") {
      room.members = room.members.map((m) => (m.id === update.member_id ? { ...m, offline: true } : m));
    } else if (update.op === "left") {
      room.members = others;
    } else if (update.op === "notice") {
      room.notice = update.text;
    }
  }
  render();
});
signal.on("error", (message) => {
  if (message.code === "revoked") window.location.reload(); // no sign-in any more (a refused ticket)
  else announce(status, t(`error_${message.code}`));
});
signal.on("reconnecting", () => announce(status, t("reconnecting")));
signal.on("revoked", () => window.location.reload()); // signed out elsewhere: the page asks to sign in

$("[data-enable-notifications]", root)?.addEventListener("click", async (event) => {
  if (!("Notification" in window)) return;
  const permission = await Notification.requestPermission();
  config.notify = permission === "granted";
  event.currentTarget.hidden = config.notify;
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) unseen = 0;
});
window.setInterval(render, 30000);
signal.connect();
signal.join();
