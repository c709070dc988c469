// Managing a class on its page: its assignments (list, create) and its settings (rename, its
// co-instructors, delete). Checked here first, then by the server; either's errors go next to
// the field. Only the owner (or an admin) may change the instructors or delete the class: the
// server answers 403 to anyone else, shown next to the form.
"use strict";

(() => {
  const root = document.getElementById("class");
  const classId = Number(root.dataset.classId);
  const { element, fieldError, clearErrors } = pulseboard;

  async function send(method, path, body) {
    const response = await pulseboard.request(method, path, body);
    return { response, body: await response.json().catch(() => ({})) };
  }

  async function loadAssignments() {
    const response = await fetch(`/api/v1/assignments?classId=${classId}`);
    if (!response.ok) return;
    const { assignments } = await response.json();
    const list = document.getElementById("assignment-list");
    if (!assignments.length) return list.replaceChildren(element("li", "muted", "No assignments yet."));
    list.replaceChildren(
      ...assignments.map((assignment) => {
        const item = element("li");
        item.append(Object.assign(element("a", "", assignment.title), { href: `/assignments/${assignment.id}` }));
        item.append(element("span", "muted", ` ${assignment.notebookPath}${assignment.dueAt ? ` · due ${new Date(assignment.dueAt).toLocaleString()}` : ""}`));
        return item;
      }),
    );
  }

  document.getElementById("assignments").addEventListener("toggle", loadAssignments);
  document.getElementById("new-assignment").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    clearErrors(form);
    const data = Object.fromEntries(new FormData(form));
    if (!data.title.trim()) return fieldError(form, "title", "Give the assignment a title.");
    if (!data.notebookPath.trim()) return fieldError(form, "notebookPath", "Name the notebook, e.g. week1/loops.ipynb.");
    const due = data.dueAt ? new Date(data.dueAt) : null;
    if (due && !(due > new Date())) return fieldError(form, "dueAt", "Choose a due date in the future.");
    const { response, body } = await send("POST", "/api/v1/assignments", {
      classId,
      title: data.title.trim(),
      notebookPath: data.notebookPath.trim(),
      description: data.description || undefined,
      dueAt: due ? due.toISOString() : undefined,
    });
    if (!response.ok) return fieldError(form, body.error?.field || "title", body.error?.message || `Error ${response.status}`);
    form.reset();
    loadAssignments();
  });

  document.getElementById("edit-class").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    clearErrors(form);
    document.getElementById("saved").textContent = "";
    const data = Object.fromEntries(new FormData(form));
    if (!data.name.trim()) return fieldError(form, "name", "Give the class a name.");
    if (!/^[A-Za-z0-9._-]{1,50}$/.test(data.code.trim())) return fieldError(form, "code", "1 to 50 letters, digits, '-', '_' or '.'.");
    const { response, body } = await send("PATCH", `/api/v1/classes/${classId}`, {
      name: data.name.trim(),
      code: data.code.trim(),
      description: data.description,
    });
    if (!response.ok) {
      const field = body.error?.field || (response.status === 409 ? "code" : "name");
      return fieldError(form, field, body.error?.message || `Error ${response.status}`);
    }
    document.getElementById("saved").textContent = "Saved.";
  });

  async function loadInstructors() {
    const response = await fetch(`/api/v1/classes/${classId}/instructors`);
    if (!response.ok) return;
    const { instructors } = await response.json();
    document.getElementById("instructor-list").replaceChildren(
      ...instructors.map((instructor) => {
        const item = element("li", "", `${instructor.email}${instructor.owner ? " (owner)" : " "}`);
        if (!instructor.owner) {
          const remove = element("button", "link", "remove");
          remove.addEventListener("click", async () => {
            const { response: removed, body } = await send("DELETE", `/api/v1/classes/${classId}/instructors/${instructor.id}`);
            if (!removed.ok) return fieldError(document.getElementById("add-instructor"), "email", body.error?.message || `Error ${removed.status}`);
            loadInstructors();
          });
          item.append(remove);
        }
        return item;
      }),
    );
  }

  document.getElementById("settings").addEventListener("toggle", loadInstructors);
  document.getElementById("add-instructor").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    clearErrors(form);
    const email = new FormData(form).get("email").trim();
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) return fieldError(form, "email", "Enter an email address.");
    const { response, body } = await send("POST", `/api/v1/classes/${classId}/instructors`, { email });
    if (!response.ok) return fieldError(form, "email", body.error?.message || `Error ${response.status}`);
    form.reset();
    loadInstructors();
  });

  document.getElementById("delete-class").addEventListener("click", async () => {
    if (!confirm("Delete this class with its roster, events, assignments and submissions? This cannot be undone.")) return;
    const { response, body } = await send("DELETE", `/api/v1/classes/${classId}`);
    if (response.ok) location.href = "/classes";
    else alert(body.error?.message || `Error ${response.status}`);
  });
})();
