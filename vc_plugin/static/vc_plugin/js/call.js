// The call: one RTCPeerConnection per other participant (a mesh), "perfect negotiation" so
// that either side may (re)negotiate, a negotiated data channel for chat and files, ICE
// restarts on network changes, and a relay (TURN) only after the person agreed.

import { Inbox, sendFile } from "./files.js";

const STATS_INTERVAL_MS = 2000;
const DISCONNECTED_GRACE_MS = 4000;
// Some networks neither connect nor fail: after this long without a connection, offer the relay.
const CONNECT_TIMEOUT_MS = 15000;

function fingerprint(sdp) {
  const match = /^a=fingerprint:(.+)$/m.exec(sdp || "");
  return match ? match[1].trim() : null;
}

class PeerLink {
  constructor(session, peer) {
    this.session = session;
    this.peer = peer;
    this.polite = session.me.id < peer.id;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.stream = new MediaStream();
    this.pc = new RTCPeerConnection(session.configuration());
    this.channel = this.pc.createDataChannel("vc", { negotiated: true, id: 0, ordered: true });
    this.channel.binaryType = "arraybuffer";
    this.inbox = new Inbox(session.fileMaxBytes, session.fileEvents(peer));
    this.channel.addEventListener("message", (event) => this.inbox.handle(event.data));
    this.channel.addEventListener("open", () => session.emit("channel-open", { peer }));
    this.disconnectedTimer = null;
    this.connectTimer = window.setTimeout(() => {
      if (this.pc.connectionState !== "connected") session.directFailed(this);
    }, CONNECT_TIMEOUT_MS);

    this.pc.addEventListener("track", (event) => {
      if (!this.stream.getTracks().includes(event.track)) this.stream.addTrack(event.track);
      session.emit("remote-stream", { peer, stream: this.stream });
    });
    this.pc.addEventListener("icecandidate", (event) => {
      session.signal.send({ type: "candidate", to: peer.id, candidate: event.candidate ? event.candidate.toJSON() : null });
    });
    this.pc.addEventListener("negotiationneeded", () => this.offer());
    this.pc.addEventListener("iceconnectionstatechange", () => this.iceChanged());
    this.pc.addEventListener("connectionstatechange", () => session.emit("peer-state", { peer, state: this.pc.connectionState }));
    for (const track of session.localStream.getTracks()) this.pc.addTrack(track, session.localStream);
  }

  async offer({ iceRestart = false } = {}) {
    try {
      this.makingOffer = true;
      if (iceRestart) this.pc.restartIce();
      await this.pc.setLocalDescription();
      this.session.signal.send({ type: "offer", to: this.peer.id, sdp: this.pc.localDescription.sdp });
    } catch (error) {
      this.session.emit("problem", { peer: this.peer, error: String(error) });
    } finally {
      this.makingOffer = false;
    }
  }

  async description(type, sdp) {
    const collision = type === "offer" && (this.makingOffer || this.pc.signalingState !== "stable");
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    await this.pc.setRemoteDescription({ type, sdp });
    if (type === "offer") {
      await this.pc.setLocalDescription();
      this.session.signal.send({ type: "answer", to: this.peer.id, sdp: this.pc.localDescription.sdp });
    }
  }

  /** An offer with another DTLS certificate comes from a new page of the same person (a reload). */
  fromAnotherPage(sdp) {
    const current = this.pc.remoteDescription && fingerprint(this.pc.remoteDescription.sdp);
    const offered = fingerprint(sdp);
    return Boolean(current && offered && current !== offered);
  }

  async candidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate || null);
    } catch (error) {
      if (!this.ignoreOffer) this.session.emit("problem", { peer: this.peer, error: String(error) });
    }
  }

  iceChanged() {
    const state = this.pc.iceConnectionState;
    window.clearTimeout(this.disconnectedTimer);
    if (state === "connected" || state === "completed") window.clearTimeout(this.connectTimer);
    if (state === "failed") {
      this.session.directFailed(this);
    } else if (state === "disconnected") {
      // Often a short network change: restart ICE if it does not recover by itself.
      this.disconnectedTimer = window.setTimeout(() => this.restart(), DISCONNECTED_GRACE_MS);
    }
  }

  restart() {
    if (this.pc.connectionState === "closed") return;
    window.clearTimeout(this.connectTimer);
    this.connectTimer = window.setTimeout(() => {
      if (this.pc.connectionState !== "connected") this.session.directFailed(this);
    }, CONNECT_TIMEOUT_MS);
    this.pc.setConfiguration(this.session.configuration());
    this.pc.restartIce();
  }

  replaceVideo(track) {
    const sender = this.pc.getSenders().find((s) => s.track && s.track.kind === "video") || this.pc.getSenders().find((s) => !s.track);
    return sender ? sender.replaceTrack(track) : Promise.resolve();
  }

  async stats() {
    const report = await this.pc.getStats();
    let pair = null;
    const byId = new Map();
    report.forEach((entry) => {
      byId.set(entry.id, entry);
      if (entry.type === "transport" && entry.selectedCandidatePairId) pair = entry.selectedCandidatePairId;
    });
    let selected = pair ? byId.get(pair) : null;
    if (!selected) {
      report.forEach((entry) => {
        if (entry.type === "candidate-pair" && entry.state === "succeeded" && entry.nominated) selected = entry;
      });
    }
    let lost = 0;
    let received = 0;
    report.forEach((entry) => {
      if (entry.type === "inbound-rtp") {
        lost += entry.packetsLost || 0;
        received += entry.packetsReceived || 0;
      }
    });
    if (!selected) return null;
    const local = byId.get(selected.localCandidateId) || {};
    const remote = byId.get(selected.remoteCandidateId) || {};
    return {
      relayed: local.candidateType === "relay" || remote.candidateType === "relay",
      rttMs: typeof selected.currentRoundTripTime === "number" ? Math.round(selected.currentRoundTripTime * 1000) : null,
      lossPercent: received + lost > 0 ? Math.round((1000 * lost) / (received + lost)) / 10 : 0,
    };
  }

  close() {
    window.clearTimeout(this.disconnectedTimer);
    window.clearTimeout(this.connectTimer);
    this.pc.close();
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
    this.fileMaxBytes = welcome.fileMaxBytes || 100 * 1024 * 1024;
    this.links = new Map();
    this.known = new Map((welcome.peers || []).map((peer) => [peer.id, peer]));
    this.cameraTrack = localStream.getVideoTracks()[0] || null;
    this.screenTrack = null;
    this.statsTimer = window.setInterval(() => this.collectStats(), STATS_INTERVAL_MS);
    this.fileCounter = 0;
    window.addEventListener("online", () => this.restartAll());
    if (navigator.connection) navigator.connection.addEventListener("change", () => this.restartAll());

    signal.on("admitted", (message) => message.peers.forEach((peer) => this.connectTo(peer)));
    signal.on("peer-joined", (message) => {
      this.peerInfo(message.peer);
      this.emit("peer-known", { peer: message.peer });
    });
    signal.on("peer-left", (message) => this.drop(message.peer));
    signal.on("peer-offline", (message) => this.emit("peer-offline", { peer: message.peer }));
    signal.on("offer", (message) => this.offered(message.from, message.sdp));
    signal.on("answer", (message) => this.links.get(message.from)?.description("answer", message.sdp));
    signal.on("candidate", (message) => this.links.get(message.from)?.candidate(message.candidate));
    signal.on("ice-restart", (message) => this.links.get(message.from)?.restart());
    signal.on("relay", (message) => this.relayArrived(message.iceServers));
  }

  configuration() {
    return { iceServers: this.iceServers, iceTransportPolicy: this.policy, bundlePolicy: "max-bundle" };
  }

  /** The newcomer starts: a link whose tracks trigger the first offer. */
  connectTo(peer) {
    this.peerInfo(peer);
    this.linkFor(peer.id);
  }

  offered(peerId, sdp) {
    const link = this.links.get(peerId);
    if (link && link.fromAnotherPage(sdp)) {
      // The other side reloaded (a language switch, say): its old connection is gone for good.
      link.close();
      this.links.delete(peerId);
    }
    this.linkFor(peerId).description("offer", sdp);
  }

  peerInfo(peer) {
    if (peer && peer.id) this.known.set(peer.id, peer);
  }

  linkFor(peerId) {
    let link = this.links.get(peerId);
    if (!link) {
      const peer = this.known.get(peerId) || { id: peerId, name: "" };
      link = new PeerLink(this, peer);
      this.links.set(peerId, link);
      this.emit("peer-added", { peer });
    }
    return link;
  }

  drop(peerId) {
    const link = this.links.get(peerId);
    if (link) {
      link.close();
      this.links.delete(peerId);
    }
    this.emit("peer-removed", { peerId });
  }

  directFailed(link) {
    if (this.relayGranted) {
      link.restart();
      return;
    }
    if (!this.relayAsked) {
      this.relayAsked = true;
      this.emit("relay-needed", { available: this.relayAvailable });
    }
  }

  /** The person agreed: ask for credentials (the server refuses without consent). */
  agreeToRelay() {
    this.signal.send({ type: "relay-request", consent: true });
  }

  declineRelay() {
    this.emit("relay-declined", {});
  }

  relayArrived(iceServers) {
    this.iceServers = iceServers;
    this.relayGranted = true;
    this.emit("relay-granted", {});
    this.restartAll();
  }

  restartAll() {
    for (const link of this.links.values()) link.restart();
  }

  setMuted(muted) {
    this.localStream.getAudioTracks().forEach((track) => { track.enabled = !muted; });
  }

  setCameraOff(off) {
    if (this.cameraTrack) this.cameraTrack.enabled = !off;
  }

  async switchCamera(deviceId) {
    const fresh = await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: deviceId } } });
    const track = fresh.getVideoTracks()[0];
    if (this.cameraTrack) {
      this.localStream.removeTrack(this.cameraTrack);
      this.cameraTrack.stop();
    }
    this.cameraTrack = track;
    this.localStream.addTrack(track);
    if (!this.screenTrack) await Promise.all([...this.links.values()].map((link) => link.replaceVideo(track)));
    this.emit("local-changed", {});
  }

  async startScreenShare() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    this.screenTrack = stream.getVideoTracks()[0];
    this.screenTrack.addEventListener("ended", () => this.stopScreenShare());
    await Promise.all([...this.links.values()].map((link) => link.replaceVideo(this.screenTrack)));
    this.emit("screen", { sharing: true, stream });
  }

  async stopScreenShare() {
    if (!this.screenTrack) return;
    this.screenTrack.stop();
    this.screenTrack = null;
    await Promise.all([...this.links.values()].map((link) => link.replaceVideo(this.cameraTrack)));
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
    for (const link of this.links.values()) {
      const stats = await link.stats().catch(() => null);
      if (stats) this.emit("stats", { peer: link.peer, ...stats });
    }
  }

  hangUp() {
    window.clearInterval(this.statsTimer);
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
