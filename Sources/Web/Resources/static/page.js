// What every page script uses: building elements, formatting times, counts and cell numbers, showing a form's errors next
// to its fields, and calling the API with the page's CSRF token (a 401 means the session ended:
// back to the login page). Loaded by the layout before the page's own script.
"use strict";

window.pulseboard = (() => {
  const csrf = document.querySelector("[data-csrf]")?.dataset.csrf ?? "";

  const element = (tag, className, text) => Object.assign(document.createElement(tag), { className: className || "", textContent: text ?? "" });
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  // "1 student", "3 students".
  const count = (n, word, plural = word + "s") => `${n} ${n === 1 ? word : plural}`;
  // Cells are numbered as JupyterLab shows them, from 1 (events carry the 0-based index).
  const cell = (index) => (index == null ? "" : `cell ${index + 1}`);
  // "just now", "4 min ago", "2 h ago", else the date.
  function ago(iso, now = Date.now()) {
    if (!iso) return "";
    const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
    if (seconds < 60) return "just now";
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return new Date(iso).toLocaleDateString();
  }

  function fieldError(form, field, message) {
    const slot = form.querySelector(`[data-error-for="${field}"]`);
    if (slot) slot.textContent = message || "";
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach((slot) => (slot.textContent = ""));
  }

  // A body of type JSON is encoded here; any other (a CSV, a notebook) is sent as it is.
  async function request(method, path, body, type = "application/json") {
    const headers = { "X-CSRF-Token": csrf };
    if (body !== undefined) headers["Content-Type"] = type;
    const encoded = body === undefined || type !== "application/json" ? body : JSON.stringify(body);
    const response = await fetch(path, { method, headers, body: encoded });
    if (response.status === 401) location.href = "/";
    return response;
  }

  async function getJSON(path) {
    const response = await request("GET", path);
    return response.ok ? response.json() : null;
  }

  return { csrf, element, when, count, cell, ago, fieldError, clearErrors, request, getJSON };
})();
