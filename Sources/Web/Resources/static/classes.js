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

  // Events that reached no class: one row per token they came with, assigned in one action.
  const { element, when, count, request, getJSON } = window.pulseboard;

  async function showStray() {
    const answer = await getJSON("/api/v1/stray-events");
    const groups = answer?.groups ?? [];
    // Once every group is assigned the table goes, and the panel stays while it reports that.
    document.getElementById("stray").hidden = groups.length === 0 && !document.getElementById("stray-report").textContent;
    document.getElementById("stray-groups").hidden = groups.length === 0;
    const rows = document.querySelector("#stray-groups tbody");
    rows.replaceChildren();
    const classes = [...document.querySelectorAll("#class-list a")].map((link) => ({ id: link.pathname.split("/").pop(), name: link.textContent }));
    for (const group of groups) {
      const row = element("tr");
      const choice = element("select");
      for (const course of classes) choice.append(Object.assign(element("option", "", course.name), { value: course.id }));
      if (group.classId != null) choice.value = String(group.classId);
      const assign = element("button", "", "Assign");
      assign.addEventListener("click", async () => {
        const body = { tokenLabel: group.tokenLabel, classId: Number(choice.value) };
        if (group.classId != null) body.fromClassId = group.classId;
        const response = await request("POST", "/api/v1/stray-events/assign", body);
        const result = await response.json().catch(() => ({}));
        document.getElementById("stray-report").textContent = response.ok
          ? `${count(result.assigned, "event")} assigned to ${choice.selectedOptions[0].textContent}.`
          : result.error?.message || `Error ${response.status}`;
        showStray();
      });
      const target = element("td");
      target.append(choice, " ", assign);
      const students = group.students.join(", ") + (group.events > 0 && group.students.length === 0 ? "(no student named)" : "");
      row.append(
        element("td", "", group.tokenLabel ? `${group.tokenLabel}…` : "(none)"), element("td", "", group.className ?? ""),
        element("td", "", String(group.events)), element("td", "", students), element("td", "", when(group.lastReceivedAt)), target);
      rows.append(row);
    }
  }
  showStray();
})();
