// The device and network check on the page: preview, level, test sound, network, help.

import { checkStun, levelMeter, listDevices, openMedia, playTestSound, reasonOf } from "./devices.js";
import { $, el, show } from "./dom.js";
import { t } from "./strings.js";

export class DeviceCheck {
  constructor(root, signal, stunServers) {
    this.root = root;
    this.signal = signal;
    this.stunServers = stunServers;
    this.stream = null;
    this.stopMeter = () => {};
    /** Told after each check which devices work ({ camera, microphone }), so the page can say what comes next. */
    this.onResult = () => {};
    this.preview = $("[data-preview]", root);
    this.meter = $("[data-level]", root);
    this.help = $("[data-help]", root);
    this.cameraSelect = $("[data-camera-select]", root);
    this.results = { camera: $("[data-result=camera]", root), microphone: $("[data-result=microphone]", root),
      server: $("[data-result=server]", root), stun: $("[data-result=stun]", root) };
    $("[data-test-sound]", root)?.addEventListener("click", () => this.testSound());
    $("[data-retry]", root)?.addEventListener("click", () => this.start());
    this.cameraSelect?.addEventListener("change", () => this.start(this.cameraSelect.value));
    signal.on("rtt", ({ rtt }) => this.mark("server", "ok", t("server_ok", { ms: Math.round(rtt) })));
    signal.on("reconnecting", () => this.mark("server", "warn", t("server_retry")));
  }

  mark(name, state, text) {
    const node = this.results[name];
    if (!node) return;
    node.dataset.state = state;
    node.textContent = text;
  }

  async start(videoDeviceId) {
    show(this.help, false);
    this.stopMeter();
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    try {
      this.stream = await openMedia({ videoDeviceId });
    } catch (error) {
      this.stream = null;
      this.explain(reasonOf(error));
      this.mark("camera", "fail", t("camera_missing"));
      this.mark("microphone", "fail", t("microphone_missing"));
      this.checkNetwork();
      this.onResult({ camera: false, microphone: false });
      return null;
    }
    const video = this.stream.getVideoTracks()[0];
    const audio = this.stream.getAudioTracks()[0];
    this.preview.srcObject = this.stream;
    this.preview.play().catch(() => {});
    this.mark("camera", video ? "ok" : "fail", video ? t("camera_ok") : t("camera_missing"));
    this.mark("microphone", audio ? "ok" : "fail", audio ? t("microphone_ok") : t("microphone_missing"));
    if (audio) this.stopMeter = levelMeter(this.stream, this.meter);
    this.onResult({ camera: Boolean(video), microphone: Boolean(audio) });
    // Not awaited: Firefox answers enumerateDevices() only while the window has focus, and a tab
    // reloaded in the background must still go back into its call.
    this.fillCameras(video);
    this.checkNetwork();
    return this.stream;
  }

  async fillCameras(current) {
    if (!this.cameraSelect) return;
    const cameras = await listDevices("videoinput").catch(() => []);
    this.cameraSelect.replaceChildren(...cameras.map((camera, index) =>
      el("option", { value: camera.deviceId, selected: current && current.getSettings().deviceId === camera.deviceId,
        text: camera.label || t("camera_n", { n: index + 1 }) })));
    show(this.cameraSelect.closest("[data-camera-choice]"), cameras.length > 1);
  }

  async checkNetwork() {
    this.signal.ping();
    const stun = await checkStun(this.stunServers);
    const texts = { ok: t("stun_ok"), none: t("stun_none"), "not-configured": t("stun_not_configured") };
    this.mark("stun", stun === "none" ? "warn" : "ok", texts[stun]);
  }

  explain(reason) {
    if (!this.help) return;
    this.help.replaceChildren(el("p", { text: t(`help_${reason}`) }));
    show(this.help, true);
  }

  async testSound() {
    const button = $("[data-test-sound]", this.root);
    button.disabled = true;
    try {
      await playTestSound();
    } finally {
      button.disabled = false;
    }
  }

  stop() {
    this.stopMeter();
  }
}
