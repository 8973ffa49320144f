// The camera, microphone and speakers a person chose, kept for a reload of the same tab: in
// sessionStorage (never sent to the server, gone with the tab). Device ids are the browser's own,
// different for every site; a remembered device that is gone later falls back to the default.

const KEY = "vc-devices";

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage blocked: choices last as long as the page
  }
}

/** { videoinput, audioinput, audiooutput }: the device ids chosen earlier in this tab, where any. */
export function rememberedDevices() {
  try {
    const saved = JSON.parse(storage()?.getItem(KEY) || "{}");
    return saved && typeof saved === "object" ? saved : {};
  } catch {
    return {};
  }
}

export function rememberDevice(kind, deviceId) {
  const saved = { ...rememberedDevices(), [kind]: deviceId || undefined };
  try {
    storage()?.setItem(KEY, JSON.stringify(saved));
  } catch {
    // full or blocked: the choice still holds for this page
  }
}
