// A student's own page: their place in each class (from /api/v1/me/progress), their
// assignments with due dates, status and grade, and a file input per assignment to hand in a
// notebook; then live their own events (`progress:<email>`), their notifications (a grade
// appears as it is given) and the admins' announcements (`broadcast`). Event text only ever
// goes through textContent.
"use strict";

(() => {
  const root = document.getElementById("me");
  const email = root.dataset.email.toLowerCase();
  const channels = [`progress:${email}`, `notifications:${root.dataset.userId}`, "broadcast"];

  const csrf = root.dataset.csrf;
  const maxNotebookBytes = 10 * 1024 * 1024;
  const { element, when, count, cell } = pulseboard;
  const classNames = new Map(); // class id -> name, from the progress cards

  async function load() {
    const response = await fetch("/api/v1/me/progress");
    if (!response.ok) return;
    const { classes } = await response.json();
    for (const { classId, className } of classes) classNames.set(classId, className);
    if (!classes.length) return;
    document.getElementById("my-classes").replaceChildren(
      ...classes.map(({ className, progress }) => {
        const card = element("div", "card");
        card.dataset.status = progress.status;
        card.append(element("div", "name", className));
        card.append(element("div", "detail", progress.notebook ? `${progress.notebook} · ${cell(progress.cellIndex) || "no cell yet"}` : "no notebook yet"));
        card.append(element("div", "detail", `${count(progress.cellsExecuted, "cell run")} · ${count(progress.recentErrors, "error")} in 10 min`));
        if (progress.helpRequest) card.append(element("div", "detail", "help requested"));
        return card;
      }),
    );
  }

  async function loadAssignments() {
    const [assignments, submissions] = await Promise.all(["/api/v1/assignments", "/api/v1/submissions?limit=1000"].map((path) => fetch(path)));
    if (!assignments.ok || !submissions.ok) return;
    const mine = new Map((await submissions.json()).submissions.map((submission) => [submission.assignmentId, submission]));
    const list = (await assignments.json()).assignments;
    if (!list.length) return;
    document.getElementById("my-assignments").replaceChildren(...list.map((assignment) => assignmentRow(assignment, mine.get(assignment.id))));
  }

  function assignmentRow(assignment, submission) {
    const row = element("tr");
    row.dataset.assignmentId = assignment.id;
    const title = element("td", "", assignment.title);
    title.append(element("div", "muted", [classNames.get(assignment.classId), assignment.notebookPath].filter(Boolean).join(" · ")));
    const overdue = assignment.dueAt && Date.parse(assignment.dueAt) < Date.now();
    const due = element("td", overdue ? "error" : "", assignment.dueAt ? when(assignment.dueAt) : "no due date");
    let status = "not handed in";
    if (submission) status = `handed in (version ${submission.version}, ${when(submission.submittedAt)})${submission.late ? " · late" : ""}`;
    const state = element("td", "status-text", status);
    if (submission?.grade != null) state.prepend(element("strong", "grade", `Grade ${submission.grade}/100 · `));
    const feedback = element("td", "", submission?.feedback ?? "");
    const form = element("form", "stacked");
    form.noValidate = true;
    const file = Object.assign(element("input"), { type: "file", name: "notebook", accept: ".ipynb,application/x-ipynb+json" });
    const error = element("span", "error");
    error.dataset.errorFor = "notebook";
    form.append(file, element("button", "secondary", submission ? "Hand in again" : "Hand in"), error);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      handIn(assignment, file.files[0], error);
    });
    const cell = element("td");
    cell.append(form);
    row.append(title, due, state, feedback, cell);
    return row;
  }

  /// Checks the file here (chosen, a notebook, small enough), then posts it as the body.
  async function handIn(assignment, file, error) {
    error.textContent = "";
    if (!file) return (error.textContent = "Choose your .ipynb file.");
    if (file.size > maxNotebookBytes) return (error.textContent = "The notebook is larger than 10 MiB.");
    const text = await file.text();
    let notebook = null;
    try {
      notebook = JSON.parse(text);
    } catch {}
    if (!notebook || !Array.isArray(notebook.cells)) return (error.textContent = "This file is not a Jupyter notebook.");
    const response = await fetch(`/api/v1/submissions?assignmentId=${assignment.id}`, {
      method: "POST",
      headers: { "Content-Type": "application/x-ipynb+json", "X-CSRF-Token": csrf },
      body: text,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      return (error.textContent = body.error?.message || `Error ${response.status}`);
    }
    loadAssignments();
  }

  function show(message) {
    const data = message.data;
    if (message.channel === "broadcast" || message.channel.startsWith("notifications:")) {
      const note = element("div", `panel notice ${data.kind || ""}`, data.message || data.title || JSON.stringify(data));
      document.getElementById("announcements").prepend(note);
      if (data.kind === "assignment_graded") loadAssignments();
      return;
    }
    const item = element("li", data.hasError ? "error" : "");
    const where = data.cellIndex != null ? ` · ${cell(data.cellIndex)}` : "";
    item.textContent = `${new Date(data.eventTime).toLocaleTimeString()} ${data.eventType}${where}${data.errorMessage ? ` — ${data.errorMessage}` : ""}`;
    const feed = document.getElementById("my-events");
    document.getElementById("no-events")?.remove();
    feed.prepend(item);
    while (feed.children.length > 50) feed.lastChild.remove();
    load();
  }

  // Missed messages that cannot be replayed: reload what they would have changed.
  function reload(channel, reason) {
    if (reason === "first") return;
    if (channel.startsWith("progress:")) load();
    if (channel.startsWith("notifications:")) loadAssignments();
  }

  const live = pulseboardLive({ onData: show, onReload: reload });
  for (const channel of channels) live.subscribe(channel);
  load().then(loadAssignments);
})();
