// A class's live view: subscribes to `class:<id>` (live.js), then loads the class picture from
// the progress API and applies the channel's updates to it.
// Cards are rebuilt at most once per animation frame, so 200 students stay responsive. Every
// text from events goes through textContent: nothing a student sends can become markup.
"use strict";

(() => {
  const root = document.getElementById("class");
  const classId = root.dataset.classId;
  const csrf = root.dataset.csrf;
  const idleMs = Number(root.dataset.idleMinutes) * 60_000;
  const channel = `class:${classId}`;
  const students = new Map();
  const noStudents = document.getElementById("no-students");
  let renderPending = false;

  const { element, fieldError, count, cell, ago } = pulseboard;

  function statusOf(student, now) {
    if (student.helpRequest) return "needs_help";
    if (!student.lastActivity || now - Date.parse(student.lastActivity) > idleMs) return "idle";
    return student.status === "needs_help" ? "active" : student.status;
  }

  function waited(since, now) {
    const seconds = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
    return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  }

  // One element per student (and per open help request), updated in place: re-rendering never
  // replaces what the instructor is about to click.
  const cards = new Map();
  const helpCards = new Map();

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function card(student, now) {
    let entry = cards.get(student.email);
    if (!entry) {
      entry = {
        node: element("div", "card"),
        name: element("div", "name"),
        where: element("div", "detail"),
        detail: element("div", "detail"),
        seen: element("div", "detail"),
        helped: element("div", "detail helped"),
      };
      entry.node.dataset.email = student.email;
      entry.node.append(entry.name, entry.where, entry.detail, entry.seen, entry.helped);
      entry.node.addEventListener("click", () => showTimeline(students.get(student.email)));
      cards.set(student.email, entry);
    }
    const status = statusOf(student, now);
    if (entry.node.dataset.status !== status) entry.node.dataset.status = status;
    setText(entry.name, student.name || student.email);
    setText(entry.where, student.notebook ? `${student.notebook}${student.cellIndex != null ? ` · ${cell(student.cellIndex)}` : ""}` : "no notebook yet");
    setText(entry.detail, `${status.replace("_", " ")} · ${count(student.cellsExecuted, "cell run")} · ${count(student.recentErrors, "error")} in 10 min`);
    setText(entry.seen, student.lastActivity ? `last active ${ago(student.lastActivity, now)}` : "not active yet");
    // Until the student turns help off: someone has been there, though the button is still on.
    const helped = student.helped;
    setText(entry.helped, helped ? `helped by ${helped.by || "a removed account"} at ${new Date(helped.at).toLocaleTimeString()}` : "");
    return entry.node;
  }

  function helpCard(student, now) {
    let entry = helpCards.get(student.email);
    if (!entry || entry.id !== student.helpRequest.id) {
      entry = { id: student.helpRequest.id, node: element("div", "card"), name: element("div", "name"), waiting: element("span", "waiting") };
      entry.node.dataset.status = "needs_help";
      entry.node.dataset.email = student.email;
      const resolve = element("button", "secondary", "Helped");
      resolve.addEventListener("click", (event) => {
        event.stopPropagation();
        fetch(`/api/v1/classes/${classId}/help/${entry.id}/resolve`, { method: "POST", headers: { "X-CSRF-Token": csrf } });
      });
      entry.node.append(entry.name, entry.waiting, resolve);
      entry.node.addEventListener("click", () => showTimeline(students.get(student.email)));
      helpCards.set(student.email, entry);
    }
    const where = student.helpRequest.cellIndex != null ? ` · ${cell(student.helpRequest.cellIndex)}` : "";
    setText(entry.name, (student.name || student.email) + where);
    setText(entry.waiting, `waiting ${waited(student.helpRequest.since, now)}`);
    return entry.node;
  }

  /// Replaces a container's children only when they differ.
  function show(container, nodes) {
    const current = container.children;
    if (current.length === nodes.length && nodes.every((node, index) => current[index] === node)) return;
    container.replaceChildren(...nodes);
  }

  function render() {
    renderPending = false;
    const now = Date.now();
    const all = [...students.values()].sort((a, b) => a.email.localeCompare(b.email));
    const help = all.filter((s) => s.helpRequest).sort((a, b) => a.helpRequest.since.localeCompare(b.helpRequest.since));
    show(document.getElementById("help"), help.map((student) => helpCard(student, now)));
    for (const email of helpCards.keys()) if (!students.get(email)?.helpRequest) helpCards.delete(email);
    const byTeam = document.getElementById("group-by-team").checked;
    const groups = new Map();
    for (const student of all) {
      const key = byTeam ? student.team || "(no team)" : "";
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(card(student, now));
    }
    const sections = [];
    for (const key of [...groups.keys()].sort()) {
      if (byTeam) sections.push(persistent(headings, key, () => element("h2", "team", key)));
      const grid = persistent(grids, key, () => element("div", "grid"));
      show(grid, groups.get(key));
      sections.push(grid);
    }
    show(document.getElementById("students"), all.length ? sections : [noStudents]);
    const counts = {};
    for (const student of all) counts[statusOf(student, now)] = (counts[statusOf(student, now)] || 0) + 1;
    setText(
      document.getElementById("summary"),
      `${count(all.length, "student")} · ${counts.active || 0} active · ${counts.erroring || 0} erroring · ${counts.needs_help || 0} need help · ${counts.idle || 0} idle`,
    );
  }

  const headings = new Map();
  const grids = new Map();
  function persistent(map, key, make) {
    if (!map.has(key)) map.set(key, make());
    return map.get(key);
  }

  function scheduleRender() {
    if (!renderPending) {
      renderPending = true;
      requestAnimationFrame(render);
    }
  }

  async function load() {
    const response = await fetch(`/api/v1/classes/${classId}/progress`);
    if (!response.ok) return;
    const body = await response.json();
    students.clear();
    for (const student of body.students) students.set(student.email, student);
    scheduleRender();
  }

  // A student's working sessions (one JupyterLab session each) to pick from; the timeline shows
  // one of them, or all, and the cells run in the chosen one.
  let timelineStudent = null;
  let sessions = [];
  const sessionChoice = document.getElementById("timeline-session");

  async function showTimeline(student) {
    timelineStudent = student;
    document.getElementById("timeline").hidden = false;
    document.getElementById("timeline-title").textContent = student.name ? `${student.name} <${student.email}>` : student.email;
    const answer = await window.pulseboard.getJSON(`/api/v1/classes/${classId}/students/${encodeURIComponent(student.email)}/sessions`);
    sessions = answer?.sessions ?? [];
    sessionChoice.replaceChildren(Object.assign(element("option", "", "All sessions"), { value: "" }));
    for (const session of sessions) {
      const label = `${new Date(session.startedAt).toLocaleString()} · ${count(session.executions, "cell run")}` +
        (session.errors ? `, ${count(session.errors, "error")}` : "") + (session.endedAt ? "" : " (open)");
      sessionChoice.append(Object.assign(element("option", "", label), { value: session.sessionId }));
    }
    await loadTimeline();
  }

  sessionChoice.addEventListener("change", () => loadTimeline());

  async function loadTimeline() {
    const student = timelineStudent;
    const chosen = sessions.find((session) => session.sessionId === sessionChoice.value);
    document.getElementById("timeline-cells").textContent = chosen
      ? chosen.cells.map((c) => `${c.notebook} ${cell(c.cellIndex)}${c.cellType ? ` (${c.cellType})` : ""} ×${c.executions}` +
          (c.errors ? `, ${c.errors} failed` : "")).join(" · ") || "No cells run in this session."
      : "";
    const list = document.getElementById("timeline-events");
    list.replaceChildren(element("li", "muted", "loading…"));
    const session = chosen ? `&sessionId=${encodeURIComponent(chosen.sessionId)}` : "";
    const response = await fetch(`/api/v1/classes/${classId}/students/${encodeURIComponent(student.email)}/timeline?limit=1000${session}`);
    const body = await response.json().catch(() => ({ events: [] }));
    // Newest first, with dates; the extension's help repeats (every 10 s) fold into one line.
    const items = [];
    let folded = null;
    for (const event of (body.events || []).reverse()) {
      const title = `${new Date(event.eventTime).toLocaleString()} ${event.eventType}` + (event.cellIndex != null ? ` · ${cell(event.cellIndex)}` : "");
      if (event.eventType === "help" && folded) {
        folded.count += 1;
        folded.line.textContent = `${folded.title} (asked ${folded.count} times, first ${new Date(event.eventTime).toLocaleTimeString()})`;
        continue;
      }
      const item = element("li");
      const line = element("div", event.hasError ? "error" : "", title);
      item.append(line);
      if (event.errorMessage) item.append(element("div", "error", event.errorMessage));
      if (event.code) item.append(element("pre", "", event.code));
      folded = event.eventType === "help" ? { line, title, count: 1 } : null;
      items.push(item);
    }
    list.replaceChildren(...items);
  }

  document.getElementById("timeline-close").addEventListener("click", () => (document.getElementById("timeline").hidden = true));

  // Error hot spots, per notebook: the cells with the most failed runs and their commonest
  // messages. Loaded each time the panel opens.
  const hotSpots = document.getElementById("hot-spots");
  hotSpots.addEventListener("toggle", async () => {
    if (!hotSpots.open) return;
    const list = document.getElementById("hot-spot-list");
    const body = await pulseboard.getJSON(`/api/v1/classes/${classId}/notebooks`);
    const notebooks = (body?.notebooks || []).filter((notebook) => notebook.hotSpots.length);
    if (!notebooks.length) return list.replaceChildren(element("p", "muted", body ? "No failed cell runs yet." : "Could not load the notebooks."));
    list.replaceChildren(
      ...notebooks.map((notebook) => {
        const section = element("div", "hot-spot");
        section.append(element("h3", "", notebook.notebook));
        for (const spot of notebook.hotSpots) {
          section.append(element("div", "error", `${cell(spot.cellIndex) || "unknown cell"}: ${count(spot.errors, "failed run")}`));
          const messages = element("ul");
          for (const top of spot.topErrors) messages.append(element("li", "", `${top.message} (${top.count}×)`));
          section.append(messages);
        }
        return section;
      }),
    );
  });
  document.getElementById("group-by-team").addEventListener("change", scheduleRender);
  // The students' serverUrl: shown again on request, or replaced (which breaks every student's).
  async function showServerUrl(response) {
    const body = await response.json().catch(() => ({}));
    const target = document.getElementById("server-url");
    const previous = body.previousTokenUntil
      ? `\n(the previous serverUrl keeps working until ${new Date(body.previousTokenUntil).toLocaleString()})`
      : "";
    target.textContent = response.ok ? body.serverUrl + previous : body.error?.message || `Error ${response.status}`;
    target.hidden = false;
  }
  document.getElementById("show-server-url").addEventListener("click", async () =>
    showServerUrl(await fetch(`/api/v1/classes/${classId}/token`)),
  );
  document.getElementById("rotate").addEventListener("click", async () => {
    if (!confirm("Replace the ingest token? Every student's serverUrl must then change.")) return;
    // The old token keeps working a day while students switch, unless it leaked.
    const leaked = confirm("Stop the old token at once? Choose OK if it leaked; Cancel keeps it working for 24 hours while students switch.");
    const path = `/api/v1/classes/${classId}/token?graceHours=${leaked ? 0 : 24}`;
    showServerUrl(await fetch(path, { method: "POST", headers: { "X-CSRF-Token": csrf } }));
  });
  setInterval(scheduleRender, 1000);

  // The roster: enrol one student, upload a CSV, accept or remove a student, and whether students
  // who join by sending events are held. Errors go next to the field.
  const post = (path, body, type) =>
    fetch(`/api/v1/classes/${classId}${path}`, { method: "POST", headers: { "Content-Type": type, "X-CSRF-Token": csrf }, body });

  const hold = document.getElementById("hold-new-students");
  hold.addEventListener("change", () =>
    fetch(`/api/v1/classes/${classId}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ holdNewStudents: hold.checked }),
    }),
  );

  async function loadRoster() {
    const course = await fetch(`/api/v1/classes/${classId}`);
    if (course.ok) hold.checked = (await course.json()).holdNewStudents;
    const response = await fetch(`/api/v1/classes/${classId}/students`);
    if (!response.ok) return;
    const { students: members } = await response.json();
    document.getElementById("roster-list").replaceChildren(
      ...members.map((member) => {
        const how = member.held ? " · joined by sending events, waiting " : member.joinedByEvents ? " · joined by sending events " : " ";
        const item = element("li", member.held ? "held" : "", `${member.email}${member.name ? ` — ${member.name}` : ""}${member.team ? ` (${member.team})` : ""}${how}`);
        if (member.held) {
          const accept = element("button", "link", "accept");
          accept.addEventListener("click", async () => {
            await fetch(`/api/v1/classes/${classId}/students/${encodeURIComponent(member.email)}/accept`, { method: "POST", headers: { "X-CSRF-Token": csrf } });
            loadRoster();
          });
          item.append(accept, " ");
        }
        const remove = element("button", "link", member.held ? "refuse" : "remove");
        remove.addEventListener("click", async () => {
          await fetch(`/api/v1/classes/${classId}/students/${encodeURIComponent(member.email)}`, { method: "DELETE", headers: { "X-CSRF-Token": csrf } });
          students.delete(member.email);
          scheduleRender();
          loadRoster();
        });
        item.append(remove);
        return item;
      }),
    );
  }

  document.getElementById("roster").addEventListener("toggle", loadRoster);
  document.getElementById("enrol").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const data = Object.fromEntries(new FormData(form));
    fieldError(form, "email", "");
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(data.email.trim())) return fieldError(form, "email", "Enter an email address.");
    const response = await post("/students", JSON.stringify({ email: data.email.trim(), name: data.name || undefined, team: data.team || undefined }), "application/json");
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      return fieldError(form, body.error?.field || "email", body.error?.message || `Error ${response.status}`);
    }
    form.reset();
    loadRoster();
    load();
  });
  document.getElementById("upload").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const file = form.elements.file.files[0];
    fieldError(form, "file", "");
    if (!file) return fieldError(form, "file", "Choose a CSV file.");
    const response = await post("/students/csv", await file.text(), "text/csv");
    const body = await response.json().catch(() => ({}));
    if (!response.ok) return fieldError(form, "file", body.error?.message || `Error ${response.status}`);
    const rejected = body.rejected.map((row) => `line ${row.line}${row.email ? ` (${row.email})` : ""}: ${row.reason}`);
    document.getElementById("upload-report").textContent =
      `${body.enrolled} enrolled, ${body.alreadyEnrolled} already enrolled, ${body.rejected.length} rejected` + (rejected.length ? ` — ${rejected.join("; ")}` : "");
    form.reset();
    loadRoster();
    load();
  });

  // Loaded once subscribed (and after a reset): what the picture misses then arrives live.
  pulseboardLive({
    onReload: load,
    onData: ({ data }) => {
      if (data.kind !== "student") return;
      students.set(data.student.email, data.student);
      scheduleRender();
    },
  }).subscribe(channel);
})();
