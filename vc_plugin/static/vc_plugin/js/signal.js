// The signalling socket: joins with "hello", notices by itself when the network is gone (no
// answer to its pings), reconnects quickly once it is back, and returns to the same place with
// the resume token kept in sessionStorage.
//
// Each attempt first asks the app for a socket ticket (the app's checks, sealed for one handshake;
// docs/signaling.md, "Socket tickets"), then opens the socket with it. A ticket refused for good
// (the invitation expired, signed out) ends the page's connection instead of retrying forever.
//
// Media signalling (offers, answers, candidates) is never kept for later: a message that could
// not be sent is stale by the time the socket is back, and the call renegotiates instead.

const FINAL_CLOSE = new Set(["ended", "declined", "left", "replaced", "expired", "revoked", "unknown_room", "not_allowed"]);
// Short waits, so that the call is back within moments of the network's return; longer ones
// later, because Chromium delays new sockets after many failed ones.
const BACKOFF_MS = [250, 500, 1000, 2000, 2000, 2000, 2000, 3000, 5000];
// While the browser knows it is offline, attempts only fail (and count as failures); the
// "online" event reconnects at once, this is for a browser that never says so.
const OFFLINE_RETRY_MS = 15000;
// Right after the network returns, Chromium sometimes holds a new socket for seconds before its
// handshake; a fresh one a moment later connects at once.
const AFTER_ONLINE_TIMEOUT_MS = 1500;
// A slow network gets longer for each attempt.
const CONNECT_TIMEOUT_MS = [4000, 6000, 8000, 12000];
const PING_EVERY_MS = 5000;
const URGENT_PING_EVERY_MS = 1000;
// Heard nothing for this many ping periods: the connection is dead even if the browser has not noticed.
const SILENT_PERIODS = 2.5;
const MIN_SILENCE_MS = 3000;
// What the ticket's answer means when it is not a ticket, said with the server's error codes (the
// pages have words for them): these do not change by trying again.
const REFUSED = new Map([
  [400, "invalid"], // the page's CSRF token no longer matches its cookie: "please reload"
  [401, "revoked"], // the pass or the sign-in is gone: reload
  [403, "not_allowed"], // staff at a call, or a foreign origin
  [404, "unknown_room"], // the consultation is no longer planned, or not this person's
  [410, "expired"], // the invitation is no longer valid
]);

export class Signal extends EventTarget {
  constructor(path, { pingEvery = PING_EVERY_MS, ticketUrl = null, csrf = "" } = {}) {
    super();
    this.path = path;
    this.ticketUrl = ticketUrl;
    this.csrf = csrf;
    this.opening = null; // the attempt under way: its ticket request can be called off
    this.resumeKey = `vc-resume:${path}`;
    this.socket = null;
    this.attempt = 0;
    this.joined = false;
    this.wantJoin = false;
    this.finished = false;
    this.pending = [];
    this.pings = new Map();
    this.pingEvery = pingEvery;
    this.urgent = false;
    this.lastHeard = 0;
    this.lastPing = 0;
    this.unansweredSince = null; // the first ping sent after the server was last heard
    this.retryTimer = null;
    this.connectTimer = null;
    this.watchTimer = null;
    this.waiters = [];
    window.addEventListener("online", () => this.reconnectNow());
    // The device lost its network: this socket is gone, whatever the browser still says.
    window.addEventListener("offline", () => {
      if (this.socket) this.abandon(this.socket, "offline");
    });
  }

  get url() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${window.location.host}${this.path}`;
  }

  connect(timeout = CONNECT_TIMEOUT_MS[Math.min(this.attempt, CONNECT_TIMEOUT_MS.length - 1)]) {
    if (this.finished) return;
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.connectTimer);
    if (this.opening) this.opening.abort();
    const opening = new AbortController();
    this.opening = opening;
    this.socket = null;
    this.connectTimer = window.setTimeout(() => this.timedOut(opening), timeout);
    this.ticket(opening).then((ticket) => {
      if (ticket !== null && this.opening === opening && !this.finished) this.open(ticket);
    });
  }

  /** This attempt's ticket ("" without a ticket URL); null when the attempt ended meanwhile. */
  async ticket(opening) {
    if (!this.ticketUrl) return "";
    let response;
    let body = null;
    try {
      response = await fetch(this.ticketUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrf },
        body: JSON.stringify({ socket: this.path }),
        signal: opening.signal,
      });
      if (response.ok) body = await response.json();
    } catch {
      // offline, the server away, or this attempt timed out (then it is not ours any more)
    }
    if (this.opening !== opening) return null;
    if (body && typeof body.ticket === "string") return body.ticket;
    if (response && REFUSED.has(response.status)) this.refused(REFUSED.get(response.status));
    else this.failedBeforeSocket(response ? 1013 : 1006);
    return null;
  }

  /** No socket yet and no ticket within the attempt's time: as a socket that never opened. */
  timedOut(opening) {
    if (this.opening !== opening) return;
    if (this.socket) {
      this.abandon(this.socket, "connect timeout");
      return;
    }
    opening.abort();
    this.failedBeforeSocket(1006);
  }

  failedBeforeSocket(code) {
    window.clearTimeout(this.connectTimer);
    this.opening = null;
    this.retry(code);
  }

  /** The app will not let this page in (any more): said as the server says it on a socket. */
  refused(code) {
    window.clearTimeout(this.connectTimer);
    this.opening = null;
    this.finished = true;
    window.sessionStorage.removeItem(this.resumeKey);
    this.emit("error", { type: "error", code });
    this.emit("finished", { reason: code, code: 1008 });
  }

  open(ticket) {
    const socket = new WebSocket(ticket ? `${this.url}?ticket=${encodeURIComponent(ticket)}` : this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      window.clearTimeout(this.connectTimer);
      this.heard();
      this.emit("open", {});
      if (this.wantJoin) this.sendHello();
      this.startWatch();
    });
    socket.addEventListener("message", (event) => {
      if (socket === this.socket) this.receive(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (socket === this.socket) this.closed(event);
    });
  }

  /** True when this tab was in the room before (a reload): hello will come back to the same place. */
  get resumable() {
    return Boolean(window.sessionStorage.getItem(this.resumeKey));
  }

  /** Joined, and heard from the server a moment ago: what is sent now arrives. */
  get alive() {
    return this.joined && performance.now() - this.lastHeard < MIN_SILENCE_MS;
  }

  /** Enter the room (or the dashboard); repeated automatically after every reconnect. */
  join(extra = {}) {
    this.helloExtra = extra; // e.g. the device check's result, sent again with every hello after a reconnect
    this.wantJoin = true;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.sendHello();
  }

  sendHello() {
    const resume = window.sessionStorage.getItem(this.resumeKey);
    this.raw({ type: "hello", ...(resume ? { resume } : {}), ...(this.helloExtra || {}) });
  }

  /** Commands wait for the room; returns false if the message could not go out now. */
  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.joined) {
      this.raw(message);
      return true;
    }
    if (this.pending.length < 200) this.pending.push(message);
    return false;
  }

  /** Media signalling: now or never (see the note at the top). */
  sendNow(message) {
    if (!(this.socket && this.socket.readyState === WebSocket.OPEN && this.joined)) return false;
    this.raw(message);
    return true;
  }

  raw(message) {
    this.socket.send(JSON.stringify(message));
  }

  /** Run `action` as soon as the server is known to hear us (at once if it answered a moment ago). */
  whenAlive(action) {
    if (this.alive) {
      action();
      return;
    }
    this.waiters.push(action);
    this.ping();
  }

  heard() {
    this.lastHeard = performance.now();
    this.unansweredSince = null;
    if (!this.joined || !this.waiters.length) return;
    const waiting = this.waiters.splice(0);
    for (const action of waiting) {
      try {
        action();
      } catch (error) {
        this.emit("problem", { error: String(error) });
      }
    }
  }

  receive(data) {
    this.heard();
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === "welcome" || message.type === "queue") {
      if (message.resume) window.sessionStorage.setItem(this.resumeKey, message.resume);
      this.joined = true;
      this.attempt = 0; // back for real: the next drop starts with short waits again
      const queued = this.pending.splice(0);
      queued.forEach((item) => this.raw(item));
      this.heard();
    } else if (message.type === "pong" && this.pings.has(message.t)) {
      const rtt = performance.now() - this.pings.get(message.t);
      this.pings.delete(message.t);
      this.emit("rtt", { rtt });
    }
    if (message.type === "error" && FINAL_CLOSE.has(message.code)) this.finished = true;
    if (["ended", "declined", "left", "revoked"].includes(message.type)) this.finished = true;
    this.emit(message.type, message);
    this.emit("message", message);
  }

  closed(event) {
    this.joined = false;
    this.stopWatch();
    window.clearTimeout(this.connectTimer);
    // 1008: the server refused this page for good (except a page too slow to read its messages).
    const refused = event.code === 1008 && event.reason !== "too slow";
    if (this.finished || refused || FINAL_CLOSE.has(event.reason)) {
      this.finished = true;
      window.sessionStorage.removeItem(this.resumeKey);
      this.emit("finished", { reason: event.reason, code: event.code });
      return;
    }
    this.retry(event.code);
  }

  retry(code) {
    const offline = navigator.onLine === false;
    const delay = offline ? OFFLINE_RETRY_MS : BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.emit("reconnecting", { delay, code });
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => this.connect(), delay);
  }

  /** Give up on a socket the network has silently lost, without waiting for the browser to notice. */
  abandon(socket, why) {
    if (socket !== this.socket || this.finished) return;
    this.socket = null;
    this.opening = null;
    this.joined = false;
    this.stopWatch();
    window.clearTimeout(this.connectTimer);
    try {
      socket.close(4000, why);
    } catch {
      // already closing
    }
    this.retry(1006);
  }

  /** The browser says the network is back: do not wait for the next retry. */
  reconnectNow() {
    if (this.finished) return;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.ping();
      return;
    }
    this.attempt = 0;
    if (this.socket) this.abandon(this.socket, "network changed");
    this.connect(AFTER_ONLINE_TIMEOUT_MS);
  }

  /** Ping more often while the call is in trouble, so that the network's return is noticed at once. */
  setUrgent(urgent) {
    if (this.urgent === urgent) return;
    this.urgent = urgent;
    if (urgent) this.ping();
  }

  /** Measures the round trip through the server (also keeps presence fresh). */
  ping() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    const stamp = Math.round(performance.now() * 1000) / 1000;
    this.pings.set(stamp, performance.now());
    if (this.pings.size > 20) this.pings.delete(this.pings.keys().next().value);
    this.lastPing = performance.now();
    if (this.unansweredSince === null) this.unansweredSince = this.lastPing;
    this.raw({ type: "ping", t: stamp });
  }

  startWatch() {
    this.stopWatch();
    this.ping();
    this.watchTimer = window.setInterval(() => this.watch(), 500);
  }

  watch() {
    const every = this.urgent ? URGENT_PING_EVERY_MS : this.pingEvery;
    const now = performance.now();
    if (now - this.lastPing >= every) this.ping();
    // Measured from the first unanswered ping, not from the last message: a background tab whose
    // timers run once a minute must not give up a healthy socket.
    const silence = Math.max(MIN_SILENCE_MS, every * SILENT_PERIODS);
    if (this.unansweredSince !== null && now - this.unansweredSince > silence && this.socket) this.abandon(this.socket, "no answer");
  }

  stopWatch() {
    if (this.watchTimer) window.clearInterval(this.watchTimer);
    this.watchTimer = null;
  }

  /** Leave for good (closes the socket, forgets the resume token). */
  leave() {
    this.finished = true;
    window.sessionStorage.removeItem(this.resumeKey);
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.connectTimer);
    if (this.opening) this.opening.abort();
    this.stopWatch();
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.joined) this.raw({ type: "leave" });
    else if (this.socket) this.socket.close(1000, "left");
  }

  on(type, handler) {
    this.addEventListener(type, (event) => handler(event.detail));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
