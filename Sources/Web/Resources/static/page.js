// What every page script uses: building elements, formatting times, showing a form's errors next
// to its fields, and calling the API with the page's CSRF token (a 401 means the session ended:
// back to the login page). Loaded by the layout before the page's own script.
"use strict";

window.pulseboard = (() => {
  const csrf = document.querySelector("[data-csrf]")?.dataset.csrf ?? "";

  const element = (tag, className, text) => Object.assign(document.createElement(tag), { className: className || "", textContent: text ?? "" });
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

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

  return { csrf, element, when, fieldError, clearErrors, request, getJSON };
})();
