// The device and network check on the page: preview, level, test sound, network, help, and the
// choice of camera, microphone and speakers (shown only where there is something to choose).

import {
  canChooseSpeaker, checkStun, chooseSpeaker, chosenSpeaker, levelMeter, openMedia, playTestSound, reasonOf,
} from "./devices.js";
import { rememberDevice, rememberedDevices } from "./device_memory.js";
import { $, el, show } from "./dom.js";
import { t } from "./strings.js";

export class DeviceCheck {
  /** `signal` may be null: before check-in opens there is no connection to the practice to check. */
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
    this.selects = { videoinput: $("[data-camera-select]", root), audioinput: $("[data-microphone-select]", root),
      audiooutput: $("[data-speaker-select]", root) };
    this.results = { camera: $("[data-result=camera]", root), microphone: $("[data-result=microphone]", root),
      server: $("[data-result=server]", root), stun: $("[data-result=stun]", root) };
    $("[data-test-sound]", root)?.addEventListener("click", () => this.testSound());
    $("[data-retry]", root)?.addEventListener("click", () => this.start(this.chosen()));
    for (const kind of ["videoinput", "audioinput"]) {
      this.selects[kind]?.addEventListener("change", () => {
        rememberDevice(kind, this.selects[kind].value);
        this.start(this.chosen());
      });
    }
    this.selects.audiooutput?.addEventListener("change", () => chooseSpeaker(this.selects.audiooutput.value));
    signal?.on("rtt", ({ rtt }) => this.mark("server", "ok", t("server_ok", { ms: Math.round(rtt) })));
    signal?.on("reconnecting", () => this.mark("server", "warn", t("server_retry")));
  }

  /** The devices picked in the lists, or earlier in this tab (a reload), for the next start ({} = defaults). */
  chosen() {
    const saved = rememberedDevices();
    const pick = (kind) => (this.selects[kind] && !this.selects[kind].closest("[data-choice]").hidden
      ? this.selects[kind].value : saved[kind]);
    return { videoDeviceId: pick("videoinput"), audioDeviceId: pick("audioinput") };
  }

  mark(name, state, text) {
    const node = this.results[name];
    if (!node) return;
    node.dataset.state = state;
    node.textContent = text;
  }

  start(choice = this.chosen()) {
    this.ready = this.open(choice);
    return this.ready;
  }

  /** The stream of the last check, once no check is under way any more (a choice may come late). */
  async settled() {
    let pending;
    do {
      pending = this.ready;
      await pending;
    } while (pending !== this.ready);
    return this.stream;
  }

  async open({ videoDeviceId, audioDeviceId }) {
    show(this.help, false);
    this.stopMeter();
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    // Two choices in quick succession: only the last one counts, the earlier devices are let go.
    const attempt = (this.attempt = (this.attempt || 0) + 1);
    try {
      const stream = await openMedia({ videoDeviceId, audioDeviceId });
      if (attempt !== this.attempt) {
        stream.getTracks().forEach((track) => track.stop());
        return this.stream;
      }
      this.stream = stream;
    } catch (error) {
      if (attempt !== this.attempt) return this.stream;
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
    this.fillChoices(video, audio);
    this.checkNetwork();
    return this.stream;
  }

  /** Fills the three lists; device names are known only once the browser was allowed to use them. */
  async fillChoices(video, audio) {
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    const inUse = { videoinput: video?.getSettings().deviceId, audioinput: audio?.getSettings().deviceId,
      audiooutput: chosenSpeaker() };
    const names = { videoinput: "camera_n", audioinput: "microphone_n", audiooutput: "speaker_n" };
    for (const [kind, select] of Object.entries(this.selects)) {
      if (!select) continue;
      const found = devices.filter((device) => device.kind === kind && device.deviceId);
      const offered = kind === "audiooutput" ? canChooseSpeaker() && found.length > 1 : found.length > 1;
      select.replaceChildren(...found.map((device, index) => el("option", { value: device.deviceId,
        selected: device.deviceId === inUse[kind], text: device.label || t(names[kind], { n: index + 1 }) })));
      show(select.closest("[data-choice]"), offered);
    }
    const speakerOffered = !this.selects.audiooutput?.closest("[data-choice]").hidden;
    show($("[data-speaker-here]", this.root), speakerOffered);
    show($("[data-speaker-hint]", this.root), !speakerOffered && canChooseSpeaker());
    show($("[data-speaker-elsewhere]", this.root), !canChooseSpeaker());
  }

  async checkNetwork() {
    this.signal?.ping();
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
