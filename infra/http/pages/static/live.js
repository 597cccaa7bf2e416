// Progressive enhancement only: every page works without this file.
// 1. Live data: a server-sent event carries the read model's position; when it passes the one the
//    page was rendered at, fetch the same URL and swap in its #live-region (no full reload).
// 2. Filters apply as soon as a choice changes.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var status = document.getElementById("live-status");

  function refresh(position) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var region = fresh.getElementById("live-region");
        var current = document.getElementById("live-region");
        if (region && current) { current.replaceWith(document.importNode(region, true)); }
        var freshMain = fresh.getElementById("main");
        main.dataset.position = freshMain ? freshMain.dataset.position : String(position);
        if (status) { status.textContent = "Updated " + new Date().toLocaleTimeString(); }
      });
  }

  if (main && main.dataset.live && window.EventSource) {
    var source = new EventSource(main.dataset.live);
    var busy = false;
    source.addEventListener("position", function (event) {
      var seen = parseInt(event.data, 10);
      if (busy || !(seen > parseInt(main.dataset.position || "0", 10))) { return; }
      busy = true;
      refresh(seen).catch(function () {}).then(function () { busy = false; });
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  var filters = document.getElementById("filters");
  if (filters) {
    filters.addEventListener("change", function () { filters.requestSubmit(); });
  }
})();
