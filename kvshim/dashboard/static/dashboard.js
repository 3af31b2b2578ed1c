// kvshim dashboard: small progressive enhancements; every page works without this file.
"use strict";

// Typed confirmation: the delete button stays disabled until the name is typed exactly.
document.querySelectorAll("input[data-must-equal]").forEach((input) => {
  const button = input.form.querySelector("button[type=submit]");
  const sync = () => { button.disabled = input.value !== input.dataset.mustEqual; };
  input.addEventListener("input", sync);
  sync();
});

// Forms that ask first (deleting an entry).
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});

// Live mode: follow the entry through Server-Sent Events (kv.watch on the server). Values
// arrive as [kind, text] tokens and become text nodes, never HTML.
function renderTokens(target, tokens) {
  target.replaceChildren(...tokens.map(([kind, text]) => {
    const span = document.createElement("span");
    span.className = "t-" + kind;
    span.textContent = text;
    return span;
  }));
}

const entry = document.getElementById("entry");
const toggle = document.getElementById("live-toggle");
if (entry && toggle) {
  const status = document.getElementById("live-status");
  const value = document.getElementById("value");
  const loaded = entry.dataset.loadedVersionstamp;
  let source = null;
  const stop = () => { if (source) source.close(); source = null; status.hidden = true; };
  toggle.addEventListener("change", () => {
    if (!toggle.checked) { stop(); return; }
    source = new EventSource(entry.dataset.watchUrl);
    status.hidden = false;
    status.textContent = "Live: connecting…";
    source.onopen = () => { status.textContent = "Live: watching for changes"; };
    source.onerror = () => { status.textContent = "Live: connection lost, retrying…"; };
    source.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.exists) renderTokens(value, data.tokens);
      else value.textContent = "(deleted)";
      const stamp = document.getElementById("versionstamp");
      if (stamp) stamp.textContent = data.versionstamp || "(deleted)";
      const type = document.getElementById("value-type");
      if (type && data.type) type.textContent = data.type;
      const changed = (data.versionstamp || "") !== loaded;
      value.classList.toggle("changed", changed);
      status.className = changed ? "hint flash-error" : "hint live-on";
      status.textContent = changed
        ? "Live: changed since this page loaded (now " + (data.versionstamp || "deleted") +
          "); saving your edit will be refused — reload to edit the latest value."
        : "Live: up to date (versionstamp " + data.versionstamp + ")";
    };
  });
}
