// The device test before the waiting room opens: camera, microphone, speakers and network, in
// this browser only. No code, no check-in, no connection to the practice (there is nothing to relay).

import { DeviceCheck } from "../device_check.js";
import { $, show } from "../dom.js";
import { pageData } from "../strings.js";

const root = document.getElementById("vc-early-check");
const config = pageData("vc-config");
const check = new DeviceCheck($("[data-early-check]", root), null, config.stun || []);
const start = $("[data-early-start]", root);

// Camera and microphone are asked for only when the person chooses to test them.
start.addEventListener("click", () => {
  show(start, false);
  show($("[data-early-check]", root), true);
  check.start();
});
