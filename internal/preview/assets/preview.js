// The preview refreshes itself: the server sends "update" after every
// rebuild (and when link checks finish), and the page swaps in a fresh copy
// of its report and frames, keeping the toolbar (and what is typed in it).
(function () {
  "use strict";
  var refreshing = false, again = false;
  function app() { return document.getElementById("app"); }
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("app");
        if (next) {
          // The new frames start at the old frames' heights, so that the
          // page does not jump while they load.
          var old = app().querySelectorAll("iframe.email");
          next.querySelectorAll("iframe.email").forEach(function (f, i) {
            if (old[i]) { f.style.height = old[i].style.height; }
          });
          app().replaceWith(document.adoptNode(next));
        }
        document.body.classList.remove("building");
      })
      .catch(function () {})
      .finally(function () { refreshing = false; if (again) { again = false; refresh(); } });
  }
  var events = new EventSource("/events");
  events.addEventListener("building", function () { document.body.classList.add("building"); });
  events.addEventListener("update", function (e) {
    if (app() && app().dataset.version !== e.data) { refresh(); }
  });
  // A frame wider than the room it has (the 1200 px desktop frame beside
  // the report in a window under ~2000 px) would show only its left margin,
  // blank: the frames stack (CSS: wrap), and a frame still too wide is
  // scaled down to fit, its caption saying by how much.
  function fit() {
    document.querySelectorAll(".frames").forEach(function (box) {
      var room = box.clientWidth;
      box.querySelectorAll("iframe.email").forEach(function (f) {
        var w = Number(f.getAttribute("width")) + 2; // the border
        var scale = room > 0 && w > room ? room / w : 1;
        f.style.zoom = scale === 1 ? "" : String(scale);
        var note = f.parentNode.querySelector(".scaled");
        var text = scale === 1 ? "" : ", shown at " + Math.floor(scale * 100) + "%";
        if (note && note.textContent !== text) { note.textContent = text; } // (else no mutation: no loop)
      });
    });
  }
  window.addEventListener("resize", fit);
  new MutationObserver(fit).observe(document.body, { childList: true, subtree: true });
  fit();
  // Each frame takes the height of the email in it (same origin, no scripts
  // run inside it).
  document.addEventListener("load", function (e) {
    var f = e.target;
    if (f.tagName !== "IFRAME") { return; }
    try { f.style.height = (f.contentDocument.documentElement.scrollHeight + 2) + "px"; } catch (err) {}
  }, true);
})();
