// The classes page: creates a class through the API (the session cookie plus the page's CSRF
// token) and shows the serverUrl for the students' JupyterLab once. Errors go next to the field.
"use strict";

(() => {
  const form = document.getElementById("new-class");
  const csrf = form.dataset.csrf;

  function showError(field, message) {
    const slot = form.querySelector(`[data-error-for="${field}"]`);
    if (slot) slot.textContent = message || "";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    showError("name", "");
    showError("code", "");
    if (!data.name.trim()) return showError("name", "Give the class a name.");
    if (!/^[A-Za-z0-9._-]{1,50}$/.test(data.code.trim())) return showError("code", "1 to 50 letters, digits, '-', '_' or '.'.");
    const response = await fetch("/api/v1/classes", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ name: data.name.trim(), code: data.code.trim(), description: data.description }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const field = body.error?.field || (response.status === 409 ? "code" : "name");
      return showError(field, body.error?.message || `Error ${response.status}`);
    }
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/classes/${body.id}`;
    link.textContent = body.name;
    item.append(link, " ", Object.assign(document.createElement("span"), { className: "muted", textContent: body.code }));
    document.getElementById("no-classes")?.remove();
    document.getElementById("class-list").append(item);
    document.getElementById("server-url").textContent = body.serverUrl;
    document.getElementById("created").hidden = false;
    form.reset();
  });
})();
