// tandem dashboard: the only script. Any element with data-sse="URL" is kept up to date from
// that server-sent event stream: `window` events carry a freshly rendered (server-escaped)
// body that replaces the element's content; `progress` events move the progress bar.
// No build step, no library.
// The Content-Security-Policy allows no inline styles, so a bar's width travels in its
// data-progress attribute (percent) and is set here.
"use strict";
function showProgress(root) {
  for (const bar of root.querySelectorAll("[data-progress]")) {
    bar.style.width = bar.dataset.progress + "%";
  }
}
showProgress(document);
for (const el of document.querySelectorAll("[data-sse]")) {
  const source = new EventSource(el.dataset.sse);
  source.addEventListener("window", (e) => {
    el.innerHTML = e.data;
    showProgress(el);
    el.dataset.updates = String(Number(el.dataset.updates || 0) + 1);
  });
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    const bar = el.querySelector("#progress-bar");
    const label = el.querySelector("#progress-label");
    if (bar) bar.style.width = Math.round(100 * p.progress) + "%";
    if (label) label.textContent = "window " + p.window + " (" + p.status + ")";
  });
  source.onerror = () => { el.dataset.disconnected = "1"; };
}
