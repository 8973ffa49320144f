// Fill the access code from the link's fragment (#code=…), which never reaches the server,
// then remove it from the address bar so it is not left in the history.
//
// Switching the language reloads the page through a POST that carries only the language and the
// page's path, so code and name would be lost. They must not travel in that request or in a URL
// (where proxies, logs and the history would keep the code), so they wait in this tab's
// sessionStorage: never sent to the server, gone with the tab, and deleted as soon as the
// reloaded page has read them. The consent box is not carried over on purpose: a person agrees
// to the text in the language they have just read it in.
(function () {
  "use strict";
  var KEY = "vc-check-in:" + window.location.pathname;
  var code = document.getElementById("code");
  var name = document.getElementById("name");

  function storage() {
    try {
      return window.sessionStorage;
    } catch (error) {
      return null; // storage disabled: the language switch then simply starts afresh
    }
  }

  var kept = null;
  var store = storage();
  if (store) {
    try {
      kept = JSON.parse(store.getItem(KEY) || "null");
    } catch (error) {
      kept = null;
    }
    store.removeItem(KEY);
  }

  var match = /(?:^|[#&])code=([A-Za-z0-9-]{5,32})/.exec(window.location.hash || "");
  if (match && code && !code.value) {
    code.value = match[1].toUpperCase();
    if (name) { name.focus(); }
  } else if (kept && code && !code.value && typeof kept.code === "string") {
    code.value = kept.code.slice(0, 32);
  }
  if (kept && name && !name.value && typeof kept.name === "string") {
    name.value = kept.name.slice(0, 60);
  }
  if (window.location.hash && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }

  var language = document.querySelector("form.vc-language");
  if (language && store && code) {
    language.addEventListener("submit", function () {
      if (code.value || (name && name.value)) {
        store.setItem(KEY, JSON.stringify({ code: code.value, name: name ? name.value : "" }));
      }
    });
  }
  var checkIn = document.getElementById("vc-check-in");
  if (checkIn && store) {
    checkIn.addEventListener("submit", function () { store.removeItem(KEY); });
  }
})();
