// What both sides see during the call: video tiles, controls, connection indicator, chat,
// files and the relay-consent dialog.

import { useChosenSpeaker } from "./devices.js";
import { $, announce, el, formatBytes, show } from "./dom.js";
import { t } from "./strings.js";

// No new picture for this long (while one is expected): the tile says it is reconnecting. Longer
// than two rounds of the once-a-second statistics, which vouch for pictures the page cannot see.
const FROZEN_AFTER_MS = 2500;
// A shared screen that does not change is sent at about one picture per second.
const FROZEN_SCREEN_AFTER_MS = 3000;
// As in vc.css: below this width the chat is behind a button, over the video.
const PHONE = "(max-width: 40rem)";
// Pinned: the other pictures share one row below the large one, at least this many places wide.
const SMALL_PLACES = 4;

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
    this.frozenTimer = window.setInterval(() => this.checkFrozen(), 500);
    this.addLocalTile();
    this.wireControls();
    this.wireChatPanel();
    this.wireSession();
    this.layout();
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
      const caption = el("figcaption", {}, [
        el("span", { text: peer.name || t("participant") }),
        el("span", { class: "vc-tile-state", "data-state": true }),
        el("span", { class: "vc-badge", "data-microphone-off": true, hidden: true, text: t("microphone_is_off") }),
        el("span", { class: "vc-badge", "data-camera-off-badge": true, hidden: true, text: t("camera_is_off") }),
      ]);
      const play = el("button", { type: "button", class: "vc-button vc-play", hidden: true, text: t("tap_to_play"),
        onclick: () => video.play().then(() => { play.hidden = true; }, () => { play.hidden = false; }) });
      const name = peer.name || t("participant");
      const pin = el("button", { type: "button", class: "vc-button vc-pin", "aria-pressed": "false",
        "aria-label": t("pin_name", { name }), text: t("pin"),
        onclick: () => this.pin(this.pinned === peer.id ? null : peer.id, name) });
      tile = el("figure", { class: "vc-tile", "data-peer": peer.id }, [video, caption, play, pin]);
      this.tiles.append(tile);
      this.tileOf.set(peer.id, tile);
      this.watchFrames(video, tile);
      this.layout();
    }
    return tile;
  }

  /** Remembers when the last picture arrived; a still picture is shown as such, not as a live one. */
  watchFrames(video, tile) {
    const seen = () => { tile.lastFrame = performance.now(); };
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
      const next = () => video.requestVideoFrameCallback(() => { seen(); next(); });
      next();
    } else {
      let last = -1;
      tile.pollFrames = () => {
        const frames = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
        if (frames !== last) { last = frames; seen(); }
      };
    }
  }

  /**
   * The browser decoded new pictures from this peer. Frame callbacks alone are not enough: a
   * browser shows (and reports) no frames for a video outside the visible part of the page.
   */
  picturesArrive(peer) {
    const tile = this.tileOf.get(peer.id);
    if (tile) tile.lastFrame = performance.now();
  }

  /** Every half second: which remote pictures stand still although a picture is expected? */
  checkFrozen() {
    const now = performance.now();
    // A hidden tab gets no frame callbacks; with sound only, nobody sends a picture.
    const looking = !document.hidden && !this.session.audioOnly;
    for (const tile of this.tileOf.values()) {
      tile.pollFrames?.();
      if (!looking) tile.lastFrame = now;
      const video = $("video", tile);
      const limit = tile.dataset.screen === "true" ? FROZEN_SCREEN_AFTER_MS : FROZEN_AFTER_MS;
      const expected = tile.dataset.camera !== "off" && !video.paused && video.srcObject && video.srcObject.getVideoTracks().some((track) => track.readyState === "live");
      const frozen = Boolean(expected && tile.lastFrame && now - tile.lastFrame > limit);
      if (frozen !== (tile.dataset.frozen === "true")) {
        tile.dataset.frozen = String(frozen);
        this.showTileState(tile);
      }
    }
  }

  showTileState(tile) {
    const state = $("[data-state]", tile);
    if (tile.dataset.frozen === "true" || tile.dataset.link === "lost") state.textContent = t("state_reconnecting");
    else if (tile.dataset.link && tile.dataset.link !== "connected") state.textContent = t(`state_${tile.dataset.link}`);
    else state.textContent = "";
  }

  /**
   * One remote picture large, the others small (an interpreter, a sign-language participant);
   * `peerId` null restores the grid.
   */
  pin(peerId, name = "") {
    this.pinned = peerId && this.tileOf.has(peerId) ? peerId : null;
    for (const [id, tile] of this.tileOf) {
      tile.dataset.pinned = String(id === this.pinned);
      $(".vc-pin", tile)?.setAttribute("aria-pressed", String(id === this.pinned));
    }
    if (this.pinned) this.tiles.dataset.pinned = this.pinned;
    else delete this.tiles.dataset.pinned;
    this.layout();
    announce(this.status, this.pinned ? t("pinned", { name }) : t("unpinned"));
  }

  layout() {
    this.tiles.dataset.count = String(this.tiles.children.length);
    this.tiles.style.setProperty("--vc-small", String(Math.max(this.tiles.children.length - 1, SMALL_PLACES)));
    // Alone in the call (the practitioner before letting anyone in): say so, not "connecting …".
    if (!this.connection) return;
    const alone = this.tileOf.size === 0;
    if (alone) {
      this.connection.textContent = t("alone_in_call");
      delete this.connection.dataset.quality;
    } else if (this.connection.dataset.alone === "true") {
      this.connection.textContent = t("state_connecting");
    }
    this.connection.dataset.alone = String(alone);
  }

  wireSession() {
    const session = this.session;
    session.on("peer-added", ({ peer }) => this.tileFor(peer));
    session.on("remote-stream", ({ peer, stream }) => {
      const tile = this.tileFor(peer);
      const video = $("video", tile);
      if (video.srcObject !== stream) video.srcObject = stream;
      useChosenSpeaker(video);
      video.play().catch(() => { $(".vc-play", tile).hidden = false; });
    });
    session.on("peer-state", ({ peer, state }) => {
      const tile = this.tileFor(peer);
      tile.dataset.link = state;
      this.showTileState(tile);
      if (state === "connected") announce(this.status, t("connected_with", { name: peer.name || t("participant") }));
    });
    session.on("peer-offline", ({ peer }) => {
      const tile = this.tileOf.get(peer);
      if (!tile) return;
      tile.dataset.link = "lost";
      this.showTileState(tile);
    });
    session.on("remote-media", ({ peer, microphone, camera, audioOnly, screen }) => {
      const tile = this.tileFor(peer);
      tile.dataset.screen = String(screen);
      tile.dataset.microphone = microphone ? "on" : "off";
      tile.dataset.camera = camera ? "on" : "off";
      show($("[data-microphone-off]", tile), !microphone);
      const badge = $("[data-camera-off-badge]", tile);
      badge.textContent = audioOnly ? t("sound_only_badge") : t("camera_is_off");
      show(badge, !camera);
      this.checkFrozen();
    });
    session.on("link-connected", ({ all }) => { if (all) this.recovered(); });
    session.on("peer-known", ({ peer }) => {
      const tile = this.tileOf.get(peer.id);
      if (tile && tile.dataset.link === "lost") {
        tile.dataset.link = session.links.get(peer.id)?.pc.connectionState || "";
        this.showTileState(tile);
      }
    });
    session.on("weak", ({ weak }) => this.weakConnection(weak));
    session.on("audio-only", ({ on }) => this.audioOnlyChanged(on));
    session.on("peer-audio-only", ({ peer, on }) => {
      if (on) announce(this.status, t("peer_chose_sound_only", { name: peer.name || t("participant") }));
    });
    session.on("peer-removed", ({ peerId }) => {
      this.tileOf.get(peerId)?.remove();
      this.tileOf.delete(peerId);
      if (this.pinned === peerId) this.pin(null);
      this.layout();
      announce(this.status, t("participant_left"));
    });
    session.on("stats", (stats) => {
      if (stats.pictures) this.picturesArrive(stats.peer);
      this.showStats(stats);
    });
    session.on("chat", ({ peer, text }) => {
      this.chatLine(peer.name || t("participant"), text, false);
      this.arrivedUnseen();
    });
    session.on("file-started", ({ file }) => this.incoming(file));
    session.on("file-progress", ({ file }) => this.incoming(file));
    session.on("file-received", (event) => this.received(event));
    session.on("file-refused", ({ name }) => this.chatLine("", t("file_refused", { name }), false, true));
    session.on("relay-needed", ({ available }) => this.askForRelay(available));
    session.on("relay-granted", () => announce(this.status, t("relay_connecting")));
    session.on("relay-declined", () => {
      show($("[data-relay-declined]", this.root), true);
      announce(this.status, t("relay_declined_text"));
    });
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
    $("[data-camera-off]", root)?.addEventListener("click", () => this.setCameraOff(!this.session.cameraOff));
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
    });
    $("[data-sound-only]", root)?.addEventListener("click", () => this.session.setAudioOnly(true));
    $("[data-keep-picture]", root)?.addEventListener("click", () => {
      this.weakDismissed = true;
      show($("[data-weak]", root), false);
    });
    $("[data-picture-back]", root)?.addEventListener("click", () => this.session.setAudioOnly(false));
    $("[data-relay-reconsider]", root)?.addEventListener("click", () => {
      show($("[data-relay-declined]", root), false);
      this.askForRelay(this.session.relayAvailable);
    });
  }

  /** Camera off or on, from the call's button or before the call (the waiting room's own switch). */
  setCameraOff(off) {
    this.session.setCameraOff(off);
    const button = $("[data-camera-off]", this.root);
    if (!button) return;
    button.setAttribute("aria-pressed", String(off));
    button.textContent = off ? t("camera_on") : t("camera_off");
  }

  /** On a phone, chat and files open over the video from the controls and close again. */
  wireChatPanel() {
    const toggle = $("[data-chat-toggle]", this.root);
    if (!toggle) return;
    this.unread = 0;
    this.phone = window.matchMedia(PHONE);
    toggle.addEventListener("click", () => this.openChat(toggle.getAttribute("aria-expanded") !== "true"));
    $("[data-chat-close]", this.root)?.addEventListener("click", () => {
      this.openChat(false);
      toggle.focus();
    });
    $(".vc-side", this.root)?.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      this.openChat(false);
      toggle.focus();
    });
  }

  openChat(open) {
    this.root.dataset.chatOpen = String(open);
    $("[data-chat-toggle]", this.root)?.setAttribute("aria-expanded", String(open));
    if (!open) return;
    this.unread = 0;
    this.showUnread();
    $("[data-chat-input]", this.root)?.focus();
  }

  /** A message or file arrived: where the chat is out of sight, count it, show it and say it. */
  arrivedUnseen() {
    if (!this.phone?.matches || this.root.dataset.chatOpen === "true") return;
    this.unread += 1;
    this.showUnread();
    announce(this.status, this.unread === 1 ? t("chat_unread_one") : t("chat_unread_many", { count: this.unread }));
  }

  showUnread() {
    const badge = $("[data-unread]", this.root);
    if (!badge) return;
    badge.textContent = String(this.unread);
    show(badge, this.unread > 0);
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

  showStats({ relayed, rttMs, lossPercent, receiving }) {
    if (!this.connection) return;
    if (receiving === false) {
      // Nothing arrives: old figures would pretend all is well.
      this.connection.textContent = t("state_disconnected");
      this.connection.dataset.quality = "lost";
      delete this.connection.dataset.rtt;
      this.sayState(this.connection.textContent);
      return;
    }
    // In words a worried patient understands; the figures stay in a tooltip for whoever asks.
    const poor = lossPercent > 5 || (rttMs || 0) > 400;
    const path = relayed ? t("path_relayed") : t("path_direct");
    this.connection.textContent = `${path} · ${t(poor ? "quality_poor" : "quality_good")}`;
    const figures = [rttMs !== null ? `${rttMs} ms` : null, `${new Intl.NumberFormat(document.documentElement.lang || undefined).format(lossPercent)} %`];
    this.connection.title = figures.filter(Boolean).join(" · ");
    this.connection.dataset.path = relayed ? "relayed" : "direct";
    this.connection.dataset.loss = String(lossPercent);
    if (rttMs !== null) this.connection.dataset.rtt = String(rttMs);
    this.connection.dataset.quality = poor ? "poor" : "good";
    this.sayState(this.connection.textContent);
  }

  /**
   * Screen readers hear the connection's state when it changes, not its once-a-second readings:
   * a state is said once it has held for two readings in a row (no chatter when it flickers) and
   * differs from the one said before; the first is not said (joining announced the connection).
   */
  sayState(text) {
    this.stateRun = text === this.stateSeen ? this.stateRun + 1 : 1;
    this.stateSeen = text;
    if (this.stateRun !== 2) return;
    if (this.stateSaid !== undefined && this.stateSaid !== text) announce(this.status, text);
    this.stateSaid = text;
  }

  /** The connection works again: questions and warnings about it are no longer true. */
  recovered() {
    if (this.dialog?.open) this.dialog.close();
    show($("[data-relay-declined]", this.root), false);
    show($("[data-no-direct]", this.root), false);
  }

  weakConnection(weak) {
    const box = $("[data-weak]", this.root);
    if (weak && !this.session.audioOnly && !this.weakDismissed) {
      show(box, true);
      announce(this.status, t("weak_connection"));
    } else if (!weak) {
      show(box, false);
      this.weakDismissed = false;
    }
  }

  audioOnlyChanged(on) {
    show($("[data-weak]", this.root), false);
    show($("[data-audio-only]", this.root), on);
    const local = $(".vc-local", this.tiles);
    if (local) local.dataset.camera = on ? "off" : "on";
    announce(this.status, on ? t("sound_only_on") : t("picture_back"));
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
    this.arrivedUnseen();
  }

  askForRelay(available) {
    if (!available) {
      // Nothing to agree to: say plainly what is wrong and what the person can try.
      show($("[data-no-direct]", this.root), true);
      return;
    }
    show($("[data-relay-declined]", this.root), false);
    if (this.dialog && !this.dialog.open) this.dialog.showModal();
  }

  close(message) {
    window.clearInterval(this.frozenTimer);
    this.session.hangUp();
    announce(this.status, message);
  }
}
