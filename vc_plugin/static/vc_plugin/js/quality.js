// The connection's quality as people experience it now: round trip and loss over the last few
// seconds (not since the call began), whether anything arrives at all, and whether it is weak.

const WINDOW_MS = 5000;
const WEAK_LOSS_PERCENT = 8;
const WEAK_RTT_MS = 500;
// Weak for this many samples in a row before the picture is lowered: one bad second is no trend.
const WEAK_SAMPLES = 3;

function totals(report) {
  let pair = null;
  const byId = new Map();
  const sums = { lost: 0, received: 0, audio: null, frames: null };
  report.forEach((entry) => {
    byId.set(entry.id, entry);
    if (entry.type === "transport" && entry.selectedCandidatePairId) pair = entry.selectedCandidatePairId;
    if (entry.type === "inbound-rtp") {
      sums.lost += Math.max(0, entry.packetsLost || 0);
      sums.received += entry.packetsReceived || 0;
      if (entry.kind === "audio") sums.audio = (sums.audio || 0) + (entry.packetsReceived || 0);
      if (entry.kind === "video") sums.frames = (sums.frames || 0) + (entry.framesDecoded || 0);
    }
  });
  let selected = pair ? byId.get(pair) : null;
  if (!selected) {
    // Firefox names no transport: the nominated pair that succeeded is the one in use.
    report.forEach((entry) => {
      if (entry.type === "candidate-pair" && entry.state === "succeeded" && (entry.nominated || entry.selected)) selected = entry;
    });
  }
  const local = selected ? byId.get(selected.localCandidateId) || {} : {};
  const remote = selected ? byId.get(selected.remoteCandidateId) || {} : {};
  return {
    ...sums,
    relayed: local.candidateType === "relay" || remote.candidateType === "relay",
    rtt: selected && typeof selected.currentRoundTripTime === "number" ? selected.currentRoundTripTime * 1000 : null,
    hasPair: Boolean(selected),
  };
}

export class Quality {
  constructor() {
    this.samples = [];
    this.audioAt = null;
    this.lastAudio = null;
    this.weakRun = 0;
  }

  /** After a (re)connection the old figures say nothing about the new path. */
  reset() {
    this.samples = [];
    this.weakRun = 0;
    this.audioAt = null; // silence counts only once sound has arrived on the new path
  }

  /** How long no sound packet has arrived (0 if none arrived yet: the other side may have no microphone). */
  silentFor(now) {
    return this.audioAt === null ? 0 : now - this.audioAt;
  }

  sample(report, now) {
    const current = totals(report);
    if (current.audio !== null && current.audio > (this.lastAudio ?? 0)) {
      this.lastAudio = current.audio;
      this.audioAt = now;
    }
    const previous = this.samples[this.samples.length - 1];
    this.samples.push({ now, ...current });
    while (this.samples.length > 2 && now - this.samples[0].now > WINDOW_MS) this.samples.shift();
    if (!current.hasPair) return null;
    const first = this.samples[0];
    const received = Math.max(0, current.received - first.received);
    const lost = Math.max(0, current.lost - first.lost);
    const receiving = previous ? current.received > previous.received : null;
    // Decoded, whether or not the page shows it: a picture scrolled out of view still arrives.
    const pictures = previous && current.frames !== null ? current.frames > (previous.frames ?? 0) : null;
    const lossPercent = received + lost > 0 ? Math.round((1000 * lost) / (received + lost)) / 10 : 0;
    const rttMs = receiving === false || current.rtt === null ? null : Math.round(current.rtt);
    const poor = receiving !== false && (lossPercent > WEAK_LOSS_PERCENT || (rttMs || 0) > WEAK_RTT_MS);
    this.weakRun = poor ? this.weakRun + 1 : 0;
    return { relayed: current.relayed, rttMs, lossPercent, receiving, pictures, poor, weak: this.weakRun >= WEAK_SAMPLES };
  }
}
