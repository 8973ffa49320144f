// Chat messages and files over an RTCDataChannel: nothing of it passes the server.
// Control messages are JSON strings; a file is "file-start", binary chunks, "file-end".

export const CHUNK_BYTES = 16 * 1024;
const BUFFER_HIGH = 1024 * 1024;

export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function drained(channel) {
  if (channel.bufferedAmount < BUFFER_HIGH) return Promise.resolve();
  return new Promise((resolve) => {
    channel.bufferedAmountLowThreshold = BUFFER_HIGH / 2;
    channel.addEventListener("bufferedamountlow", () => resolve(), { once: true });
    channel.addEventListener("close", () => resolve(), { once: true }); // the sender then sees it closed
  });
}

/** Send `file` (a File or Blob with a name) to one channel; `progress(sentBytes)` is called as it goes. */
export async function sendFile(channel, file, id, progress) {
  const buffer = await file.arrayBuffer();
  const hash = await sha256Hex(buffer);
  channel.send(JSON.stringify({ t: "file-start", id, name: file.name, size: buffer.byteLength, mime: file.type || "application/octet-stream" }));
  for (let offset = 0; offset < buffer.byteLength; offset += CHUNK_BYTES) {
    await drained(channel);
    if (channel.readyState !== "open") throw new Error("channel closed");
    channel.send(buffer.slice(offset, offset + CHUNK_BYTES));
    progress(Math.min(buffer.byteLength, offset + CHUNK_BYTES));
  }
  channel.send(JSON.stringify({ t: "file-end", id, sha256: hash }));
  return hash;
}

/** Receives one peer's chat and files; calls `events` handlers. Refuses files over `maxBytes`.
 *  Other control messages (microphone and camera state, sound only) go to `control`. */
export class Inbox {
  constructor(maxBytes, events, control = () => {}) {
    this.maxBytes = maxBytes;
    this.events = events;
    this.control = control;
    this.current = null;
  }

  async handle(data) {
    if (typeof data !== "string") {
      this.chunk(data instanceof ArrayBuffer ? data : await data.arrayBuffer());
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.t === "chat" && typeof message.text === "string") {
      this.events.chat(message.text.slice(0, 2000));
    } else if (message.t === "file-start") {
      const size = Number(message.size);
      if (!Number.isFinite(size) || size < 0 || size > this.maxBytes) {
        this.current = { refused: true, id: message.id };
        this.events.refused(String(message.name || ""), size);
        return;
      }
      this.current = { id: message.id, name: String(message.name || "file").slice(0, 200), size, mime: String(message.mime || ""), parts: [], received: 0 };
      this.events.started(this.current);
    } else if (message.t === "file-end" && this.current && this.current.id === message.id) {
      const file = this.current;
      this.current = null;
      if (file.refused) return;
      // Whatever type the sender names, the file is only downloaded: a blob of type text/html or
      // image/svg+xml opened from its link would be a page of our origin.
      const blob = new Blob(file.parts, { type: "application/octet-stream" });
      const hash = await sha256Hex(await blob.arrayBuffer());
      this.events.finished(file, blob, hash, hash === message.sha256);
    } else if (message.t === "media" || message.t === "audio-only") {
      this.control(message);
    }
  }

  chunk(buffer) {
    const file = this.current;
    if (!file || file.refused) return;
    file.received += buffer.byteLength;
    if (file.received > file.size) {
      this.current = { refused: true, id: file.id };
      this.events.refused(file.name, file.received);
      return;
    }
    file.parts.push(buffer);
    this.events.progress(file);
  }
}
