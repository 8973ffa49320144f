// The signalling socket: joins with "hello", reconnects by itself after a network drop and
// comes back to the same place with the resume token kept in sessionStorage.

const FINAL_CLOSE = new Set(["ended", "declined", "left", "replaced", "expired", "revoked"]);
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];

export class Signal extends EventTarget {
  constructor(path) {
    super();
    this.path = path;
    this.resumeKey = `vc-resume:${path}`;
    this.socket = null;
    this.attempt = 0;
    this.joined = false;
    this.wantJoin = false;
    this.finished = false;
    this.pending = [];
    this.pings = new Map();
    this.pingTimer = null;
  }

  get url() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${window.location.host}${this.path}`;
  }

  connect() {
    if (this.finished) return;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.emit("open", {});
      if (this.wantJoin) this.sendHello();
      this.startPings();
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => this.closed(event));
  }

  /** True when this tab was in the room before (a reload): hello will come back to the same place. */
  get resumable() {
    return Boolean(window.sessionStorage.getItem(this.resumeKey));
  }

  /** Enter the room (or the dashboard); repeated automatically after every reconnect. */
  join() {
    this.wantJoin = true;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.sendHello();
  }

  sendHello() {
    const resume = window.sessionStorage.getItem(this.resumeKey);
    this.raw({ type: "hello", ...(resume ? { resume } : {}) });
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.joined) {
      this.raw(message);
    } else if (this.pending.length < 200) {
      this.pending.push(message);
    }
  }

  raw(message) {
    this.socket.send(JSON.stringify(message));
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === "welcome" || message.type === "queue") {
      if (message.resume) window.sessionStorage.setItem(this.resumeKey, message.resume);
      this.joined = true;
      const queued = this.pending.splice(0);
      queued.forEach((item) => this.raw(item));
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
    this.stopPings();
    if (this.finished || FINAL_CLOSE.has(event.reason)) {
      this.finished = true;
      window.sessionStorage.removeItem(this.resumeKey);
      this.emit("finished", { reason: event.reason, code: event.code });
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.emit("reconnecting", { delay, code: event.code });
    window.setTimeout(() => this.connect(), delay);
  }

  /** Measures the round trip through the server (also keeps presence fresh). */
  ping() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    const stamp = Math.round(performance.now() * 1000) / 1000;
    this.pings.set(stamp, performance.now());
    this.raw({ type: "ping", t: stamp });
  }

  startPings() {
    this.stopPings();
    this.ping();
    this.pingTimer = window.setInterval(() => this.ping(), 15000);
  }

  stopPings() {
    if (this.pingTimer) window.clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  /** Leave for good (closes the socket, forgets the resume token). */
  leave() {
    this.finished = true;
    window.sessionStorage.removeItem(this.resumeKey);
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
