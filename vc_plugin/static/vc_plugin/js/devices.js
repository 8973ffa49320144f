// The device and network check: camera preview, microphone level, a test sound, and whether
// the signalling server and a STUN server answer. Errors become plain-language reasons.

import { rememberDevice, rememberedDevices } from "./device_memory.js";

export const REASONS = {
  NotAllowedError: "permission",
  SecurityError: "permission",
  NotFoundError: "no-device",
  OverconstrainedError: "no-device",
  NotReadableError: "in-use",
  AbortError: "in-use",
};

export function reasonOf(error) {
  return REASONS[error && error.name] || "unknown";
}

export async function openMedia({ videoDeviceId, audioDeviceId } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const error = new Error("no media devices");
    error.name = window.isSecureContext ? "NotFoundError" : "SecurityError";
    throw error;
  }
  const video = videoDeviceId ? { deviceId: { exact: videoDeviceId } } : { facingMode: "user" };
  const audio = audioDeviceId ? { deviceId: { exact: audioDeviceId } } : { echoCancellation: true, noiseSuppression: true };
  try {
    return await navigator.mediaDevices.getUserMedia({ video: { ...video, width: { ideal: 1280 }, height: { ideal: 720 } }, audio });
  } catch (error) {
    if ((error.name === "NotFoundError" || error.name === "OverconstrainedError") && (videoDeviceId || audioDeviceId)) {
      return openMedia(); // the chosen device is gone (unplugged since): the defaults, not half the call
    }
    if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
      // Perhaps only one of the two exists: a consultation by voice or picture alone still works.
      return navigator.mediaDevices.getUserMedia({ audio: true }).catch(() => navigator.mediaDevices.getUserMedia({ video: true }));
    }
    throw error;
  }
}

export async function listDevices(kind) {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((device) => device.kind === kind);
}

// The speakers chosen in the device check, for the call on the same page ("" = the device's default).
let speaker = rememberedDevices().audiooutput || "";

/** Only some browsers (Chrome, Edge, Firefox) let a page choose where sound plays; Safari does not. */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== "undefined" && typeof HTMLMediaElement.prototype.setSinkId === "function";
}

export function chooseSpeaker(deviceId) {
  speaker = deviceId || "";
  rememberDevice("audiooutput", speaker);
}

export function chosenSpeaker() {
  return speaker;
}

/** Plays `element`'s sound on the chosen speakers, where the browser allows it. */
export async function useChosenSpeaker(element) {
  if (!speaker || element.sinkId === speaker) return;
  if (typeof element.setSinkId === "function") await element.setSinkId(speaker).catch(() => {});
}

/** Animates `meter` (a <meter> or <progress>) with the microphone's level; returns a stop function. */
export function levelMeter(stream, meter) {
  const track = stream.getAudioTracks()[0];
  if (!track) return () => {};
  const context = new AudioContext();
  const source = context.createMediaStreamSource(new MediaStream([track]));
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const samples = new Uint8Array(analyser.fftSize);
  let running = true;
  const frame = () => {
    if (!running) return;
    analyser.getByteTimeDomainData(samples);
    let peak = 0;
    for (const sample of samples) peak = Math.max(peak, Math.abs(sample - 128));
    meter.value = Math.min(1, peak / 64);
    meter.dataset.heard = String(Number(meter.dataset.heard || 0) + (peak > 4 ? 1 : 0));
    window.requestAnimationFrame(frame);
  };
  frame();
  return () => {
    running = false;
    context.close();
  };
}

/** A short, quiet two-tone chime made on the spot: no audio file, no download. */
export async function playTestSound(sinkId = speaker) {
  const context = new AudioContext();
  const gain = context.createGain();
  gain.gain.value = 0.2;
  gain.connect(context.destination);
  if (sinkId && typeof context.setSinkId === "function") await context.setSinkId(sinkId).catch(() => {});
  [523.25, 659.25].forEach((frequency, index) => {
    const oscillator = context.createOscillator();
    oscillator.frequency.value = frequency;
    oscillator.connect(gain);
    oscillator.start(context.currentTime + index * 0.35);
    oscillator.stop(context.currentTime + index * 0.35 + 0.3);
  });
  await new Promise((resolve) => window.setTimeout(resolve, 800));
  await context.close();
}

/** Does a STUN server answer? "ok", "none" (no answer), or "not-configured". */
export async function checkStun(iceServers, timeoutMs = 5000) {
  const stun = (iceServers || []).filter((server) => !server.username);
  if (!stun.length) return "not-configured";
  const pc = new RTCPeerConnection({ iceServers: stun });
  pc.createDataChannel("probe");
  const found = new Promise((resolve) => {
    pc.addEventListener("icecandidate", (event) => {
      if (event.candidate && / typ srflx /.test(event.candidate.candidate)) resolve("ok");
      if (!event.candidate) resolve("none");
    });
    window.setTimeout(() => resolve("none"), timeoutMs);
  });
  await pc.setLocalDescription(await pc.createOffer());
  const result = await found;
  pc.close();
  return result;
}
