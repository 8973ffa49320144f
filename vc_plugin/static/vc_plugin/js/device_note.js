// What a waiting person's device check found, as the practitioner reads it beside their name.

import { el } from "./dom.js";
import { t } from "./strings.js";

const KEYS = {
  "true,true": "devices_ok",
  "false,true": "devices_no_camera",
  "true,false": "devices_no_microphone",
  "false,false": "devices_none",
};

/** A short line ("Camera and microphone work"); none when the page did not say (an older page, a reload). */
export function deviceNote(member) {
  if (typeof member.camera !== "boolean" || typeof member.microphone !== "boolean") return null;
  const works = member.camera && member.microphone;
  return el("span", { class: `vc-devices${works ? "" : " vc-devices-problem"}`, "data-devices": works ? "ok" : "problem",
    text: t(KEYS[`${member.camera},${member.microphone}`]) });
}
