// What both sides see during the call: video tiles, controls, connection indicator, chat,
// files and the relay-consent dialog.

import { $, announce, el, formatBytes, show } from "./dom.js";
import { t } from "./strings.js";

export class CallView {
  constructor(root, session, { onLeave }) {
    this.root = root;
    this.session = session;
    this.tiles = $("[data-tiles]", root);
    this.status = $("[data-call-status]", root);
    this.connection = $("[data-connection]", root);
    this.chatLog = $("[data-chat-log]", root);
    this.files = $("[data-files]", root);
    this.dialog = $("[data-relay-dialog]", root);
    this.onLeave = onLeave;
    this.tileOf = new Map();
    this.addLocalTile();
    this.wireControls();
    this.wireSession();
  }

  addLocalTile() {
    const video = el("video", { autoplay: true, playsinline: true, muted: true, "data-local": true });
    video.muted = true;
    video.srcObject = this.session.localStream;
    const tile = el("figure", { class: "vc-tile vc-local" }, [video, el("figcaption", { text: t("you") })]);
    this.tiles.append(tile);
    this.localVideo = video;
    video.play().catch(() => {});
  }

  tileFor(peer) {
    let tile = this.tileOf.get(peer.id);
    if (!tile) {
      const video = el("video", { autoplay: true, playsinline: true, "data-remote": peer.id });
      const caption = el("figcaption", {}, [el("span", { text: peer.name || t("participant") }), el("span", { class: "vc-tile-state", "data-state": true })]);
      const play = el("button", { type: "button", class: "vc-button vc-play", hidden: true, text: t("tap_to_play"),
        onclick: () => { video.play(); play.hidden = true; } });
      tile = el("figure", { class: "vc-tile", "data-peer": peer.id }, [video, caption, play]);
      this.tiles.append(tile);
      this.tileOf.set(peer.id, tile);
      this.layout();
    }
    return tile;
  }

  layout() {
    this.tiles.dataset.count = String(this.tiles.children.length);
  }

  wireSession() {
    const session = this.session;
    session.on("peer-added", ({ peer }) => this.tileFor(peer));
    session.on("remote-stream", ({ peer, stream }) => {
      const tile = this.tileFor(peer);
      const video = $("video", tile);
      if (video.srcObject !== stream) video.srcObject = stream;
      video.play().catch(() => { $(".vc-play", tile).hidden = false; });
    });
    session.on("peer-state", ({ peer, state }) => {
      const tile = this.tileFor(peer);
      $("[data-state]", tile).textContent = state === "connected" ? "" : t(`state_${state}`);
      if (state === "connected") announce(this.status, t("connected_with", { name: peer.name || t("participant") }));
    });
    session.on("peer-offline", ({ peer }) => {
      const tile = this.tileOf.get(peer);
      if (tile) $("[data-state]", tile).textContent = t("state_reconnecting");
    });
    session.on("peer-removed", ({ peerId }) => {
      this.tileOf.get(peerId)?.remove();
      this.tileOf.delete(peerId);
      this.layout();
      announce(this.status, t("participant_left"));
    });
    session.on("stats", (stats) => this.showStats(stats));
    session.on("chat", ({ peer, text }) => this.chatLine(peer.name || t("participant"), text, false));
    session.on("file-started", ({ file }) => this.incoming(file));
    session.on("file-progress", ({ file }) => this.incoming(file));
    session.on("file-received", (event) => this.received(event));
    session.on("file-refused", ({ name }) => this.chatLine("", t("file_refused", { name }), false, true));
    session.on("relay-needed", ({ available }) => this.askForRelay(available));
    session.on("relay-granted", () => announce(this.status, t("relay_connecting")));
    session.on("relay-declined", () => announce(this.status, t("relay_declined_text")));
    session.on("screen", ({ sharing }) => {
      const button = $("[data-share]", this.root);
      button.setAttribute("aria-pressed", String(sharing));
      button.textContent = sharing ? t("stop_sharing") : t("share_screen");
      this.root.dataset.sharing = String(sharing);
    });
  }

  wireControls() {
    const root = this.root;
    const toggle = (selector, apply, onText, offText) => {
      const button = $(selector, root);
      button?.addEventListener("click", () => {
        const pressed = button.getAttribute("aria-pressed") !== "true";
        button.setAttribute("aria-pressed", String(pressed));
        button.textContent = pressed ? onText : offText;
        apply(pressed);
      });
    };
    toggle("[data-mute]", (on) => this.session.setMuted(on), t("unmute"), t("mute"));
    toggle("[data-camera-off]", (on) => this.session.setCameraOff(on), t("camera_on"), t("camera_off"));
    const share = $("[data-share]", root);
    if (share && !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia)) share.hidden = true;
    share?.addEventListener("click", async () => {
      try {
        if (this.session.screenTrack) await this.session.stopScreenShare();
        else await this.session.startScreenShare();
      } catch {
        announce(this.status, t("share_failed"));
      }
    });
    const switcher = $("[data-switch-camera]", root);
    switcher?.addEventListener("click", () => this.nextCamera());
    this.offerCameraSwitch(switcher);
    $("[data-leave]", root)?.addEventListener("click", () => this.onLeave());
    $("[data-chat-form]", root)?.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("[data-chat-input]", root);
      const text = input.value.trim();
      if (!text) return;
      if (this.session.sendChat(text) === 0) {
        announce(this.status, t("nobody_to_send"));
        return;
      }
      this.chatLine(t("you"), text, true);
      input.value = "";
    });
    $("[data-file-form]", root)?.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendSelectedFile();
    });
    $("[data-file-input]", root)?.addEventListener("change", () => {
      this.fileError("");
      this.fileChosen();
    });
    const limit = $("[data-file-limit]", root);
    if (limit) limit.textContent = t("file_limit", { size: formatBytes(this.session.fileMaxBytes) });
    $("[data-relay-agree]", root)?.addEventListener("click", () => {
      this.dialog.close();
      this.session.agreeToRelay();
    });
    $("[data-relay-decline]", root)?.addEventListener("click", () => {
      this.dialog.close();
      this.session.declineRelay();
      show($("[data-relay-declined]", root), true);
    });
    $("[data-relay-reconsider]", root)?.addEventListener("click", () => {
      show($("[data-relay-declined]", root), false);
      this.askForRelay(this.session.relayAvailable);
    });
  }

  async offerCameraSwitch(button) {
    if (!button) return;
    const cameras = (await navigator.mediaDevices.enumerateDevices().catch(() => [])).filter((d) => d.kind === "videoinput");
    button.hidden = cameras.length < 2;
    this.cameras = cameras;
  }

  async nextCamera() {
    if (!this.cameras || this.cameras.length < 2) return;
    const current = this.session.cameraTrack && this.session.cameraTrack.getSettings().deviceId;
    const index = this.cameras.findIndex((camera) => camera.deviceId === current);
    const next = this.cameras[(index + 1) % this.cameras.length];
    await this.session.switchCamera(next.deviceId);
    this.localVideo.srcObject = this.session.localStream;
  }

  showStats({ relayed, rttMs, lossPercent }) {
    if (!this.connection) return;
    const path = relayed ? t("path_relayed") : t("path_direct");
    const parts = [path];
    if (rttMs !== null) parts.push(t("rtt", { ms: rttMs }));
    parts.push(t("loss", { percent: new Intl.NumberFormat(document.documentElement.lang || undefined).format(lossPercent) }));
    this.connection.textContent = parts.join(" · ");
    this.connection.dataset.path = relayed ? "relayed" : "direct";
    if (rttMs !== null) this.connection.dataset.rtt = String(rttMs);
    this.connection.dataset.quality = lossPercent > 5 || (rttMs || 0) > 400 ? "poor" : "good";
  }

  chatLine(author, text, mine, notice = false) {
    const line = el("li", { class: mine ? "vc-mine" : notice ? "vc-chat-notice" : "" }, [
      author ? el("strong", { text: `${author}: ` }) : null,
      el("span", { text }),
    ]);
    this.chatLog.append(line);
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
  }

  /** Shows the chosen file's name next to our own (translated) picker button. */
  fileChosen() {
    const input = $("[data-file-input]", this.root);
    const file = input.files && input.files[0];
    const chosen = $("[data-file-chosen]", this.root);
    if (chosen) chosen.textContent = file ? `${file.name} (${formatBytes(file.size)})` : t("no_file_chosen");
  }

  fileError(text) {
    const box = $("[data-file-error]", this.root);
    if (box) {
      box.textContent = text;
      show(box, Boolean(text));
    }
  }

  async sendSelectedFile() {
    const input = $("[data-file-input]", this.root);
    const file = input.files && input.files[0];
    if (!file) return;
    if (file.size > this.session.fileMaxBytes) {
      this.fileError(t("file_too_large", { size: formatBytes(this.session.fileMaxBytes) }));
      input.value = "";
      this.fileChosen();
      return;
    }
    const bar = el("progress", { max: file.size, value: 0, "aria-label": file.name });
    const item = el("li", { "data-outgoing": file.name }, [el("span", { text: `${file.name} (${formatBytes(file.size)}) ` }), bar]);
    this.files.append(item);
    try {
      const hash = await this.session.sendFile(file, (sent) => { bar.value = sent; });
      item.dataset.sha256 = hash;
      item.append(el("span", { class: "vc-done", text: ` ${t("file_sent")}` }));
    } catch {
      item.append(el("span", { class: "vc-failed", text: ` ${t("file_failed")}` }));
    }
    input.value = "";
    this.fileChosen();
  }

  incoming(file) {
    let item = this.files.querySelector(`[data-incoming="${CSS.escape(file.id)}"]`);
    if (!item) {
      item = el("li", { "data-incoming": file.id }, [el("span", { text: `${file.name} (${formatBytes(file.size)}) ` }),
        el("progress", { max: file.size || 1, value: 0, "aria-label": file.name })]);
      this.files.append(item);
    }
    $("progress", item).value = file.received;
  }

  received({ file, blob, hash, intact }) {
    const item = this.files.querySelector(`[data-incoming="${CSS.escape(file.id)}"]`) || el("li");
    item.dataset.sha256 = hash;
    item.dataset.size = String(blob.size);
    if (!intact) {
      item.append(el("span", { class: "vc-failed", text: ` ${t("file_damaged")}` }));
      return;
    }
    const link = el("a", { href: URL.createObjectURL(blob), download: file.name, text: t("download") });
    item.append(" ", link);
    announce(this.status, t("file_arrived", { name: file.name }));
  }

  askForRelay(available) {
    const text = $("[data-relay-unavailable]", this.root);
    show(text, !available);
    show($("[data-relay-agree]", this.root), available);
    if (this.dialog && !this.dialog.open) this.dialog.showModal();
  }

  close(message) {
    this.session.hangUp();
    announce(this.status, message);
  }
}
