// Fill the access code from the link's fragment (#code=…), which never reaches the server,
// then remove it from the address bar so it is not left in the history.
(function () {
  "use strict";
  var match = /(?:^|[#&])code=([A-Za-z0-9-]{5,32})/.exec(window.location.hash || "");
  var field = document.getElementById("code");
  if (match && field && !field.value) {
    field.value = match[1].toUpperCase();
    var name = document.getElementById("name");
    if (name) { name.focus(); }
  }
  if (window.location.hash && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
})();
