// The call: one RTCPeerConnection per other participant (a mesh), "perfect negotiation" so
// that either side may (re)negotiate, a negotiated data channel for chat and files, and a relay
// (TURN) only after the person agreed.
//
// Recovery (docs/signaling.md, "When the network drops"): while the signalling socket is down
// nothing is negotiated, since every message would be lost. As soon as the server hears us again,
// or the other side is back, each link that is not connected restarts ICE; perfect negotiation
// settles who answers whom. An offer that stays unanswered is sent again, and a link that still
// does not connect although both sides talk is replaced by a fresh peer connection. The relay is
// offered only when the direct path fails while both sides demonstrably exchange signalling.

import { Inbox, sendFile } from "./files.js";
import { Quality } from "./quality.js";

const STATS_INTERVAL_MS = 1000;
const WATCH_INTERVAL_MS = 1000;
// ICE "disconnected" is often a hiccup that heals by itself; after this long, restart.
const DISCONNECTED_GRACE_MS = 2000;
// An offer not answered this long while the server hears us was lost: offer again.
const ANSWER_TIMEOUT_MS = 4000;
// Both sides talk but no path for this long: a fresh peer connection (the impolite side first).
const RENEW_AFTER_MS = { impolite: 8000, polite: 14000 };
// Both sides talk but no direct path for this long: the direct path fails in this network.
const DIRECT_TIMEOUT_MS = 15000;
// Connected, but not one audio packet for this long: the path is dead although ICE has not noticed.
const MEDIA_SILENCE_MS = 4000;
// While a link stays down although both sides talk, ICE is tried again this often: the network
// may have changed (another Wi-Fi, a firewall rule lifted).
const RETRY_EVERY_MS = 10000;
// Fresh peer connections tried before the network itself is suspected (then: the relay question).
const RENEWALS_BEFORE_RELAY = 2;
// The other side counts as talking if a description came from it within this time.
const HEARD_RECENTLY_MS = 20000;

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

function fingerprint(sdp) {
  const match = /^a=fingerprint:(.+)$/m.exec(sdp || "");
  return match ? match[1].trim() : null;
}

/** What one link went through since it was last connected; a fresh peer connection inherits it. */
class Trouble {
  constructor(everConnected = false) {
    this.since = null; // when both sides could talk but the link was not connected
    this.heard = false; // a description came from the other side since then
    this.heardAt = 0;
    this.everConnected = everConnected;
    this.renewals = 0; // fresh peer connections tried in this trouble
  }

  begin(now) {
    if (this.since !== null) return;
    this.since = now;
    // After a connection was lost, only an answer from now on shows that the other side is there;
    // before the first connection, the answer that started it counts.
    if (this.everConnected) this.heard = false;
  }

  /** The other side answered: from now on, both demonstrably talk; the clock for "stuck" starts. */
  hear(now) {
    this.heardAt = now;
    if (this.heard) return;
    this.heard = true;
    if (this.since !== null) this.since = now;
  }

  pause() {
    this.since = null;
    this.heard = false;
  }

  /** Connected again: the next trouble starts from scratch. */
  over() {
    this.pause();
    this.everConnected = true;
    this.renewals = 0;
  }
}

class PeerLink {
  constructor(session, peer, trouble = new Trouble()) {
    this.session = session;
    this.peer = peer;
    this.id = randomId(); // names this peer connection in every message (see docs/signaling.md)
    this.remoteId = null;
    this.chain = Promise.resolve(); // descriptions and candidates, one after another
    this.closedByUs = false;
    this.polite = session.me.id < peer.id;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.offeredAt = 0;
    this.lastRecovery = performance.now(); // a new link negotiates first; retries come later
    this.mediaRestartAt = 0;
    this.trouble = trouble;
    this.quality = new Quality();
    this.stream = new MediaStream();
    this.remoteMedia = { microphone: true, camera: true };
    this.audioOnlyForPeer = false;
    this.pc = new RTCPeerConnection(session.configuration());
    this.channel = this.pc.createDataChannel("vc", { negotiated: true, id: 0, ordered: true });
    this.channel.binaryType = "arraybuffer";
    this.inbox = new Inbox(session.fileMaxBytes, session.fileEvents(peer), (message) => this.control(message));
    this.channel.addEventListener("message", (event) => this.inbox.handle(event.data));
    this.channel.addEventListener("open", () => {
      this.tellMedia();
      if (session.audioOnly) this.sendControl({ t: "audio-only", on: true });
      session.emit("channel-open", { peer });
    });
    this.disconnectedTimer = null;

    this.pc.addEventListener("track", (event) => {
      if (!this.stream.getTracks().includes(event.track)) this.stream.addTrack(event.track);
      session.emit("remote-stream", { peer, stream: this.stream });
    });
    this.pc.addEventListener("icecandidate", (event) => {
      this.send({ type: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
    });
    this.pc.addEventListener("negotiationneeded", () => this.offer());
    this.pc.addEventListener("iceconnectionstatechange", () => this.iceChanged());
    this.pc.addEventListener("connectionstatechange", () => {
      if (this.pc.connectionState === "connected") this.connected();
      session.emit("peer-state", { peer, state: this.pc.connectionState });
    });
    for (const track of session.localStream.getTracks()) this.pc.addTrack(track, session.localStream);
    // A fresh link during sound only or a screen share sends what the others see now.
    if (session.currentVideoTrack() !== session.cameraTrack) this.replaceVideo(session.currentVideoTrack());
  }

  send(message) {
    return this.session.signal.sendNow({ ...message, to: this.peer.id, pc: this.id, ...(this.remoteId ? { to_pc: this.remoteId } : {}) });
  }

  /** Messages of one link are handled in order: two descriptions at once break the state machine. */
  enqueue(step) {
    this.chain = this.chain.then(step).catch((error) => this.session.emit("problem", { peer: this.peer, error: String(error) }));
    return this.chain;
  }

  get isConnected() {
    return this.pc.connectionState === "connected";
  }

  connected() {
    this.trouble.over();
    this.quality.reset();
    this.session.linkConnected(this);
  }

  async offer() {
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.offeredAt = performance.now();
      if (this.pc.localDescription.type === "offer") this.send({ type: "offer", sdp: this.pc.localDescription.sdp });
    } catch (error) {
      this.session.emit("problem", { peer: this.peer, error: String(error) });
    } finally {
      this.makingOffer = false;
    }
  }

  description(type, sdp, from) {
    return this.enqueue(async () => {
      if (this.pc.connectionState === "closed") return;
      if (type === "answer" && this.pc.signalingState !== "have-local-offer") return; // late: superseded
      this.trouble.hear(performance.now());
      if (from) this.remoteId = from;
      const collision = type === "offer" && (this.makingOffer || this.pc.signalingState !== "stable");
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      await this.pc.setRemoteDescription({ type, sdp });
      if (type === "offer" && this.pc.signalingState === "have-remote-offer") {
        await this.pc.setLocalDescription();
        if (this.pc.localDescription.type === "answer") this.send({ type: "answer", sdp: this.pc.localDescription.sdp });
      }
    });
  }

  /** An offer with another DTLS certificate comes from a new page or a fresh peer connection. */
  fromAnotherPage(sdp) {
    const current = this.pc.remoteDescription && fingerprint(this.pc.remoteDescription.sdp);
    const offered = fingerprint(sdp);
    return Boolean(current && offered && current !== offered);
  }

  candidate(candidate, from) {
    return this.enqueue(async () => {
      if (this.pc.connectionState === "closed" || (from && this.remoteId && from !== this.remoteId)) return;
      try {
        await this.pc.addIceCandidate(candidate || null);
      } catch (error) {
        if (!this.ignoreOffer) throw error;
      }
    });
  }

  iceChanged() {
    const state = this.pc.iceConnectionState;
    window.clearTimeout(this.disconnectedTimer);
    if (state === "failed") {
      this.recover();
    } else if (state === "disconnected") {
      this.disconnectedTimer = window.setTimeout(() => this.recover(), DISCONNECTED_GRACE_MS);
    }
  }

  /** Restart ICE once the server hears us; until then every message would be lost. */
  recover() {
    if (this.pc.connectionState === "closed") return;
    this.session.signal.whenAlive(() => this.restartIce());
  }

  restartIce() {
    const state = this.pc.signalingState;
    if (this.pc.connectionState === "closed" || this.isConnected) return;
    const now = performance.now();
    if (now - this.lastRecovery < 1000) return; // one restart per moment, however many reasons
    this.lastRecovery = now;
    this.pc.setConfiguration(this.session.configuration());
    this.pc.restartIce();
    // In "stable" the restart fires negotiationneeded; an own offer still waiting is sent anew.
    if (state === "have-local-offer") this.offer();
  }

  /** Called every second: what should happen to a link that is not connected? */
  watch(now) {
    if (this.pc.connectionState === "closed") {
      // Closed, but not by us (the browser gave it up): nothing can bring it back but a fresh one.
      if (!this.closedByUs) this.session.renew(this);
      return;
    }
    this.watchMedia(now);
    const talking = this.session.signal.alive && !this.session.isAway(this.peer.id);
    if (talking && this.pc.signalingState === "have-local-offer" && now - this.offeredAt > ANSWER_TIMEOUT_MS) {
      this.offeredAt = now;
      this.session.signal.whenAlive(() => this.enqueue(() => this.offer())); // the offer was lost: again
      return;
    }
    if (this.isConnected) return;
    if (!talking) {
      this.trouble.pause(); // nothing can be negotiated now; the return restarts it
      return;
    }
    this.trouble.begin(now);
    const stuckFor = now - this.trouble.since;
    // Only while the other side answers now: one answer long ago says nothing about this moment.
    if (!this.trouble.heard || now - this.trouble.heardAt > HEARD_RECENTLY_MS) return;
    const renewAfter = RENEW_AFTER_MS[this.polite ? "polite" : "impolite"];
    if (this.trouble.everConnected && this.trouble.renewals < RENEWALS_BEFORE_RELAY && stuckFor > renewAfter) {
      this.session.renew(this);
      return;
    }
    // Never connected, or fresh peer connections did not help either: the network blocks the direct path.
    if (stuckFor > DIRECT_TIMEOUT_MS) this.session.directFailed(this);
    if (now - this.lastRecovery > RETRY_EVERY_MS && this.pc.signalingState === "stable") this.restartIce();
  }

  /** "Connected" with no sound arriving: ICE has not noticed yet that the path is gone. */
  watchMedia(now) {
    if (!this.isConnected || this.quality.silentFor(now) < MEDIA_SILENCE_MS) return;
    if (now - this.mediaRestartAt < MEDIA_SILENCE_MS) return;
    this.mediaRestartAt = now;
    this.session.signal.whenAlive(() => {
      if (this.pc.connectionState !== "closed" && this.pc.signalingState === "stable") this.pc.restartIce();
    });
  }

  replaceVideo(track) {
    const sender = this.videoSender();
    return sender ? sender.replaceTrack(this.audioOnlyForPeer ? null : track) : Promise.resolve();
  }

  videoSender() {
    return this.pc.getTransceivers().find((t) => t.sender && (t.sender.track?.kind === "video" || t.receiver.track?.kind === "video"))?.sender || null;
  }

  /** Send a lighter picture (or none) when the connection is weak. */
  async setVideoLimit(limit) {
    const sender = this.videoSender();
    if (!sender) return;
    const parameters = sender.getParameters();
    if (!parameters.encodings || !parameters.encodings.length) parameters.encodings = [{}];
    for (const encoding of parameters.encodings) {
      if (limit) {
        encoding.scaleResolutionDownBy = 2;
        encoding.maxBitrate = 250000;
      } else {
        encoding.scaleResolutionDownBy = 1;
        delete encoding.maxBitrate;
      }
    }
    await sender.setParameters(parameters).catch(() => {});
  }

  /** The other side asked for sound only (or for the picture again). */
  async pauseVideoForPeer(paused) {
    this.audioOnlyForPeer = paused;
    const sender = this.videoSender();
    if (sender) await sender.replaceTrack(paused ? null : this.session.currentVideoTrack()).catch(() => {});
  }

  control(message) {
    if (message.t === "media") {
      this.remoteMedia = { microphone: message.microphone !== false, camera: message.camera !== false,
        audioOnly: Boolean(message.audioOnly), screen: Boolean(message.screen) };
      this.session.emit("remote-media", { peer: this.peer, ...this.remoteMedia });
    } else if (message.t === "audio-only") {
      this.pauseVideoForPeer(Boolean(message.on));
      this.session.emit("peer-audio-only", { peer: this.peer, on: Boolean(message.on) });
    }
  }

  /** Tell the other side whether our microphone and camera are on (they show it on our tile). */
  tellMedia() {
    this.sendControl({ t: "media", ...this.session.mediaState() });
  }

  sendControl(message) {
    if (this.channel.readyState === "open") this.channel.send(JSON.stringify(message));
  }

  async stats() {
    const report = await this.pc.getStats();
    return this.quality.sample(report, performance.now());
  }

  close() {
    this.closedByUs = true;
    window.clearTimeout(this.disconnectedTimer);
    this.pc.close();
    this.channel.dispatchEvent(new Event("close")); // a file transfer waiting to drain gives up
  }
}

export class CallSession extends EventTarget {
  constructor(signal, localStream, welcome) {
    super();
    this.signal = signal;
    this.localStream = localStream;
    this.me = welcome.you;
    this.iceServers = welcome.iceServers || [];
    this.policy = welcome.iceTransportPolicy || "all";
    this.relayAvailable = Boolean(welcome.relayAvailable);
    this.relayGranted = this.policy === "relay";
    this.relayAsked = false;
    this.relayDeclined = false;
    this.fileMaxBytes = welcome.fileMaxBytes || 100 * 1024 * 1024;
    this.links = new Map();
    this.closed = false;
    this.away = new Set();
    this.known = new Map((welcome.peers || []).map((peer) => [peer.id, peer]));
    this.cameraTrack = localStream.getVideoTracks()[0] || null;
    this.screenTrack = null;
    this.muted = false;
    this.cameraOff = false;
    this.audioOnly = false;
    this.limited = false;
    this.statsTimer = window.setInterval(() => this.collectStats(), STATS_INTERVAL_MS);
    this.watchTimer = window.setInterval(() => this.watch(), WATCH_INTERVAL_MS);
    this.fileCounter = 0;
    window.addEventListener("online", () => this.recoverAll());
    if (navigator.connection) navigator.connection.addEventListener("change", () => this.recoverAll());

    // Back after the socket dropped: renegotiate whatever is not connected.
    signal.on("welcome", () => this.recoverAll());
    signal.on("reconnecting", () => signal.setUrgent(true));
    signal.on("admitted", (message) => message.peers.forEach((peer) => this.connectTo(peer)));
    signal.on("peer-joined", (message) => {
      this.peerInfo(message.peer);
      this.away.delete(message.peer.id);
      // Known already: the other side came back after a drop or a reload.
      this.links.get(message.peer.id)?.recover();
      this.emit("peer-known", { peer: message.peer });
    });
    signal.on("peer-left", (message) => this.drop(message.peer));
    signal.on("peer-offline", (message) => {
      this.away.add(message.peer);
      this.emit("peer-offline", { peer: message.peer });
    });
    signal.on("offer", (message) => this.offered(message));
    signal.on("answer", (message) => this.forLink(message)?.description("answer", message.sdp, message.pc));
    signal.on("candidate", (message) => this.forLink(message)?.candidate(message.candidate, message.pc));
    signal.on("ice-restart", (message) => this.links.get(message.from)?.recover());
    signal.on("relay", (message) => this.relayArrived(message.iceServers));
  }

  configuration() {
    return { iceServers: this.iceServers, iceTransportPolicy: this.policy, bundlePolicy: "max-bundle" };
  }

  isAway(peerId) {
    return this.away.has(peerId);
  }

  /** The newcomer starts: a link whose tracks trigger the first offer. */
  connectTo(peer) {
    this.peerInfo(peer);
    this.away.delete(peer.id);
    this.linkFor(peer.id);
  }

  /** The link a message belongs to; none if it was meant for a peer connection replaced meanwhile. */
  forLink(message) {
    const link = this.links.get(message.from);
    if (!link || (message.to_pc && message.to_pc !== link.id)) return null;
    return link;
  }

  offered(message) {
    if (this.closed) return;
    const peerId = message.from;
    this.away.delete(peerId);
    let link = this.links.get(peerId);
    if (link && message.to_pc && message.to_pc !== link.id) return; // for our previous page or connection
    const fresh = message.pc ? link?.remoteId && message.pc !== link.remoteId : link?.fromAnotherPage(message.sdp);
    if (link && (fresh || link.pc.connectionState === "closed")) {
      // The other side reloaded, or replaced a stuck connection: ours is of no use any more.
      link = this.replaceLink(link, new Trouble(link.trouble.everConnected));
    }
    (link || this.linkFor(peerId)).description("offer", message.sdp, message.pc);
  }

  peerInfo(peer) {
    if (peer && peer.id) this.known.set(peer.id, peer);
  }

  linkFor(peerId, trouble) {
    let link = this.links.get(peerId);
    if (!link && !this.closed) {
      const peer = this.known.get(peerId) || { id: peerId, name: "" };
      link = new PeerLink(this, peer, trouble);
      this.links.set(peerId, link);
      if (this.limited) link.setVideoLimit(true);
      this.emit("peer-added", { peer });
    }
    return link;
  }

  replaceLink(link, trouble) {
    link.close();
    this.links.delete(link.peer.id);
    return this.linkFor(link.peer.id, trouble);
  }

  /** A link that does not recover although both sides talk: start over with a fresh one. */
  renew(link) {
    const trouble = new Trouble(true);
    trouble.renewals = link.trouble.renewals + 1;
    this.replaceLink(link, trouble);
    this.emit("link-renewed", { peer: link.peer });
  }

  linkConnected(link) {
    const all = [...this.links.values()].every((other) => other.isConnected);
    if (all) this.relayAsked = false; // a later failure (another network) may ask again
    this.emit("link-connected", { peer: link.peer, all });
  }

  drop(peerId) {
    const link = this.links.get(peerId);
    if (link) {
      link.close();
      this.links.delete(peerId);
    }
    this.away.delete(peerId);
    this.emit("peer-removed", { peerId });
  }

  watch() {
    const now = performance.now();
    for (const link of [...this.links.values()]) link.watch(now);
    const troubled = [...this.links.values()].some((link) => !link.isConnected);
    this.signal.setUrgent(troubled || !this.signal.joined);
  }

  recoverAll() {
    for (const link of this.links.values()) if (!link.isConnected) link.recover();
  }

  directFailed(link) {
    if (this.relayGranted) {
      this.renew(link);
      return;
    }
    if (this.relayAsked) return;
    this.relayAsked = true;
    // Once declined, the person is reminded why there is no picture, not asked again.
    if (this.relayDeclined) this.emit("relay-declined", {});
    else this.emit("relay-needed", { available: this.relayAvailable });
  }

  /** The person agreed: ask for credentials (the server refuses without consent). */
  agreeToRelay() {
    this.signal.send({ type: "relay-request", consent: true });
  }

  declineRelay() {
    this.relayDeclined = true;
    this.emit("relay-declined", {});
  }

  relayArrived(iceServers) {
    this.iceServers = iceServers;
    this.relayGranted = true;
    this.emit("relay-granted", {});
    for (const link of this.links.values()) {
      if (!link.isConnected) {
        link.lastRecovery = 0;
        link.recover();
      }
    }
  }

  mediaState() {
    return { microphone: !this.muted, camera: !this.cameraOff && !this.audioOnly, audioOnly: this.audioOnly, screen: Boolean(this.screenTrack) };
  }

  tellMedia() {
    for (const link of this.links.values()) link.tellMedia();
  }

  setMuted(muted) {
    this.muted = muted;
    this.localStream.getAudioTracks().forEach((track) => { track.enabled = !muted; });
    this.tellMedia();
  }

  setCameraOff(off) {
    this.cameraOff = off;
    if (this.cameraTrack) this.cameraTrack.enabled = !off;
    this.tellMedia();
  }

  currentVideoTrack() {
    if (this.audioOnly) return null;
    return this.screenTrack || this.cameraTrack;
  }

  /** Sound only, chosen by the person when the connection is weak: no picture either way. */
  async setAudioOnly(on) {
    this.audioOnly = on;
    for (const link of this.links.values()) {
      link.sendControl({ t: "audio-only", on });
      await link.replaceVideo(this.currentVideoTrack());
    }
    this.tellMedia();
    this.emit("audio-only", { on });
  }

  async switchCamera(deviceId) {
    const fresh = await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: deviceId } } });
    const track = fresh.getVideoTracks()[0];
    if (this.cameraTrack) {
      this.localStream.removeTrack(this.cameraTrack);
      this.cameraTrack.stop();
    }
    track.enabled = !this.cameraOff;
    this.cameraTrack = track;
    this.localStream.addTrack(track);
    if (!this.screenTrack) await Promise.all([...this.links.values()].map((link) => link.replaceVideo(this.currentVideoTrack())));
    this.emit("local-changed", {});
  }

  async startScreenShare() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    this.screenTrack = stream.getVideoTracks()[0];
    this.screenTrack.addEventListener("ended", () => this.stopScreenShare());
    await Promise.all([...this.links.values()].map((link) => link.replaceVideo(this.currentVideoTrack())));
    this.tellMedia();
    this.emit("screen", { sharing: true, stream });
  }

  async stopScreenShare() {
    if (!this.screenTrack) return;
    this.screenTrack.stop();
    this.screenTrack = null;
    await Promise.all([...this.links.values()].map((link) => link.replaceVideo(this.currentVideoTrack())));
    this.tellMedia();
    this.emit("screen", { sharing: false });
  }

  sendChat(text) {
    const message = JSON.stringify({ t: "chat", text });
    let sent = 0;
    for (const link of this.links.values()) {
      if (link.channel.readyState === "open") {
        link.channel.send(message);
        sent += 1;
      }
    }
    return sent;
  }

  async sendFile(file, progress) {
    if (file.size > this.fileMaxBytes) throw new RangeError("too large");
    const open = [...this.links.values()].filter((link) => link.channel.readyState === "open");
    if (!open.length) throw new Error("nobody to send to");
    this.fileCounter += 1;
    const id = `${this.me.id}-${this.fileCounter}`;
    const hashes = await Promise.all(open.map((link) => sendFile(link.channel, file, id, (bytes) => progress(bytes, file.size))));
    return hashes[0];
  }

  fileEvents(peer) {
    return {
      chat: (text) => this.emit("chat", { peer, text }),
      started: (file) => this.emit("file-started", { peer, file }),
      progress: (file) => this.emit("file-progress", { peer, file }),
      finished: (file, blob, hash, intact) => this.emit("file-received", { peer, file, blob, hash, intact }),
      refused: (name, size) => this.emit("file-refused", { peer, name, size }),
    };
  }

  async collectStats() {
    let weak = false;
    for (const link of [...this.links.values()]) {
      const stats = await link.stats().catch(() => null);
      if (!stats) continue;
      this.emit("stats", { peer: link.peer, ...stats });
      weak = weak || stats.weak;
    }
    this.adapt(weak);
  }

  /** A weak connection lowers the picture by itself; sound only is the person's choice. */
  adapt(weak) {
    if (weak && !this.limited) {
      this.limited = true;
      for (const link of this.links.values()) link.setVideoLimit(true);
      this.emit("weak", { weak: true });
    } else if (!weak && this.limited) {
      this.limited = false;
      for (const link of this.links.values()) link.setVideoLimit(false);
      this.emit("weak", { weak: false });
    }
  }

  hangUp() {
    this.closed = true;
    window.clearInterval(this.statsTimer);
    window.clearInterval(this.watchTimer);
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.localStream.getTracks().forEach((track) => track.stop());
    if (this.screenTrack) this.screenTrack.stop();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  on(type, handler) {
    this.addEventListener(type, (event) => handler(event.detail));
  }
}
