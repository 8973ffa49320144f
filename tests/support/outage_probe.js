// Instrumentation for tests/support/outage_call.py, added to every page before its own scripts run.
// Keeps every RTCPeerConnection (window.__vcPcs), data channel and WebSocket the client makes and logs
// their state changes with Date.now() (window.__vcLog), with online/offline, the relay dialog and relay
// notices, and chat lines as they appear. window.__vcSample(since) returns counters and new log entries;
// window.__vcChat(text) sends a chat line through the page's own form. __NOTICES__ is replaced by a selector.
(() => {
  if (window.__vcLog) return;
  const log = [];
  const pcs = [];
  const channels = [];
  window.__vcLog = log;
  window.__vcPcs = pcs;
  const note = (what, extra = {}) => log.push({ t: Date.now(), what, ...extra });
  window.addEventListener("online", () => note("online"));
  window.addEventListener("offline", () => note("offline"));
  if (navigator.connection) {
    navigator.connection.addEventListener("change", () => note("connection-change", { type: navigator.connection.type || "" }));
  }

  const watchChannel = (channel, pc) => {
    channels.push(channel);
    for (const kind of ["open", "close", "error"]) {
      channel.addEventListener(kind, () => note(`channel-${kind}`, { pc, label: channel.label }));
    }
  };
  const Native = window.RTCPeerConnection;
  let counter = 0;
  class Watched extends Native {
    constructor(...args) {
      super(...args);
      this.__vcId = ++counter;
      this.__vcLast = { video: 0, audio: 0 };
      pcs.push(this);
      note("pc-created", { pc: this.__vcId });
      const id = this.__vcId;
      this.addEventListener("connectionstatechange", () => note("pc-state", { pc: id, state: this.connectionState }));
      this.addEventListener("iceconnectionstatechange", () => note("ice-state", { pc: id, state: this.iceConnectionState }));
      this.addEventListener("datachannel", (event) => watchChannel(event.channel, this.__vcId));
    }
    createDataChannel(...args) {
      const channel = super.createDataChannel(...args);
      watchChannel(channel, this.__vcId);
      return channel;
    }
    restartIce() {
      note("restart-ice", { pc: this.__vcId });
      return super.restartIce();
    }
    close() {
      note("pc-close", { pc: this.__vcId });
      return super.close();
    }
  }
  window.RTCPeerConnection = Watched;

  const NativeSocket = window.WebSocket;
  class WatchedSocket extends NativeSocket {
    constructor(url, ...rest) {
      super(url, ...rest);
      const path = new URL(url, location.href).pathname;
      note("ws-new", { path });
      this.addEventListener("open", () => note("ws-open", { path }));
      this.addEventListener("error", () => note("ws-error", { path }));
      this.addEventListener("close", (event) => note("ws-close", { path, code: event.code, reason: event.reason }));
    }
  }
  window.WebSocket = WatchedSocket;

  const NOTICES = "__NOTICES__";
  const observe = () => {
    new MutationObserver((records) => {
      for (const record of records) {
        const target = record.target;
        if (record.type === "attributes" && target.matches) {
          if ((record.oldValue === null) === (target.getAttribute(record.attributeName) === null)) continue;
          if (target.matches("[data-relay-dialog]")) note("relay-dialog", { open: target.open });
          else if (target.matches(NOTICES)) note("relay-notice", { shown: !target.hidden, which: target.getAttributeNames().find((n) => n.startsWith("data-")) });
        } else if (record.type === "childList") {
          for (const node of record.addedNodes) {
            if (node.nodeName === "LI" && node.parentElement && node.parentElement.matches("[data-chat-log]")) {
              note("chat", { text: node.textContent, mine: node.classList.contains("vc-mine") });
            }
          }
          if (target.matches && target.matches("[data-status], [data-call-status]") && target.textContent) {
            note("status", { text: target.textContent });
          }
        }
      }
    }).observe(document.documentElement, { subtree: true, childList: true, attributes: true, attributeOldValue: true,
      attributeFilter: ["open", "hidden"] });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", observe);
  else observe();

  const counters = async (pc) => {
    const item = { pc: pc.__vcId, state: pc.connectionState, ice: pc.iceConnectionState, signaling: pc.signalingState,
      video: pc.__vcLast.video, audio: pc.__vcLast.audio, path: null };
    if (pc.connectionState === "closed") return item;
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return item;
    }
    let video = 0;
    let audio = 0;
    const byId = new Map();
    let pairId = null;
    report.forEach((entry) => {
      byId.set(entry.id, entry);
      if (entry.type === "inbound-rtp" && entry.kind === "video") video += entry.framesDecoded || 0;
      if (entry.type === "inbound-rtp" && entry.kind === "audio") audio += entry.packetsReceived || 0;
      if (entry.type === "transport" && entry.selectedCandidatePairId) pairId = entry.selectedCandidatePairId;
    });
    const pair = pairId && byId.get(pairId);
    if (pair) {
      const local = byId.get(pair.localCandidateId) || {};
      const remote = byId.get(pair.remoteCandidateId) || {};
      item.path = `${local.candidateType || "?"}/${remote.candidateType || "?"}`;
    }
    pc.__vcLast = { video, audio };
    item.video = video;
    item.audio = audio;
    return item;
  };

  window.__vcSample = async (since) => ({
    now: Date.now(),
    online: navigator.onLine,
    pcs: await Promise.all(pcs.map(counters)),
    channels: channels.map((c) => c.readyState),
    dialog: Boolean(document.querySelector("[data-relay-dialog][open]")),
    notices: [...document.querySelectorAll(NOTICES)].filter((n) => !n.hidden && n.offsetParent !== null)
      .map((n) => n.getAttributeNames().find((a) => a.startsWith("data-"))),
    log: log.slice(since),
  });

  window.__vcChat = (text) => {
    const form = document.querySelector("[data-chat-form]");
    const input = form && form.querySelector("[data-chat-input]");
    if (!input) return false;
    input.value = text;
    form.requestSubmit();
    return true;
  };
})();
