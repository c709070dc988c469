// An assignment for its instructor: per student of the class, how far their events say they got
// on the notebook, their submission (latest version, late, download) and an inline grade form.
// The class's channel (live.js) says when a student ran a cell or handed something in; the
// table then reloads, at most every two seconds. Grades are saved with PATCH, errors shown next
// to the field; the student sees the grade appear live on their page.
"use strict";

(() => {
  const root = document.getElementById("assignment");
  const assignmentId = root.dataset.assignmentId;
  const csrf = root.dataset.csrf;
  const rows = new Map(); // email -> { row, cells }
  let reloadTimer = null;

  const { element, when, count, cell, getJSON: json } = pulseboard;

  if (root.dataset.dueAt) document.getElementById("due").textContent = `Due ${when(root.dataset.dueAt)}`;

  function row(email) {
    let entry = rows.get(email);
    if (entry) return entry;
    entry = { row: element("tr"), student: element("td"), progress: element("td"), submission: element("td") };
    entry.row.dataset.email = email;
    const grade = Object.assign(element("input"), { type: "number", min: "0", max: "100", step: "any", name: "grade" });
    const feedback = Object.assign(element("input"), { name: "feedback", maxLength: 10000, placeholder: "feedback" });
    const save = element("button", "secondary", "Save");
    const error = element("div", "error");
    error.dataset.errorFor = "grade";
    Object.assign(entry, { grade, feedback, save, error });
    const gradeCell = element("td");
    gradeCell.append(grade, error);
    const feedbackCell = element("td");
    feedbackCell.append(feedback);
    const saveCell = element("td");
    saveCell.append(save);
    entry.row.append(entry.student, entry.progress, entry.submission, gradeCell, feedbackCell, saveCell);
    save.addEventListener("click", () => saveGrade(entry));
    rows.set(email, entry);
    return entry;
  }

  async function saveGrade(entry) {
    entry.error.textContent = "";
    const text = entry.grade.value.trim();
    const grade = text === "" ? null : Number(text);
    if (grade !== null && !(grade >= 0 && grade <= 100)) {
      entry.error.textContent = "A grade is a number from 0 to 100.";
      return;
    }
    const response = await fetch(`/api/v1/submissions/${entry.submissionId}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ grade, feedback: entry.feedback.value.trim() || null }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      entry.error.textContent = body.error?.message || `Error ${response.status}`;
      return;
    }
    entry.row.dataset.graded = body.grade != null ? "yes" : "no";
    entry.save.textContent = "Saved";
    setTimeout(() => (entry.save.textContent = "Save"), 1500);
  }

  async function load() {
    const [progress, list] = await Promise.all([
      json(`/api/v1/assignments/${assignmentId}/progress`),
      json(`/api/v1/submissions?assignmentId=${assignmentId}&limit=1000`),
    ]);
    if (!progress || !list) return;
    const submissions = new Map(list.submissions.map((submission) => [submission.studentEmail, submission]));
    const body = document.getElementById("students");
    let submitted = 0;
    let late = 0;
    for (const student of progress.students) {
      const entry = row(student.email);
      entry.student.textContent = student.name ? `${student.name} <${student.email}>` : student.email;
      entry.progress.textContent = student.opened
        ? `${count(student.cellsRun, "different cell")} run · furthest without error: ${cell(student.furthestCell) || "none"} · ${count(student.errors, "error")}${student.lastActivity ? ` · ${when(student.lastActivity)}` : ""}`
        : "not opened";
      const submission = submissions.get(student.email);
      entry.submissionId = submission?.id;
      entry.row.dataset.submitted = submission ? "yes" : "no";
      entry.submission.replaceChildren();
      const editing = document.activeElement === entry.grade || document.activeElement === entry.feedback;
      for (const input of [entry.grade, entry.feedback, entry.save]) input.disabled = !submission;
      if (!submission) {
        entry.submission.textContent = "not submitted";
        continue;
      }
      submitted += 1;
      if (submission.late) late += 1;
      const link = Object.assign(element("a", "", `version ${submission.version}`), { href: `/api/v1/submissions/${submission.id}/notebook` });
      entry.submission.append(link, ` · ${when(submission.submittedAt)}`);
      if (submission.late) entry.submission.append(" ", element("span", "badge late", "late"));
      if (submission.gradedVersion && submission.gradedVersion < submission.version) entry.submission.append(" ", element("span", "badge", "new since graded"));
      if (!editing) {
        entry.grade.value = submission.grade ?? "";
        entry.feedback.value = submission.feedback ?? "";
      }
      entry.row.dataset.graded = submission.grade != null ? "yes" : "no";
    }
    body.replaceChildren(...progress.students.map((student) => rows.get(student.email).row));
    document.getElementById("summary").textContent = `${count(progress.students.length, "student")} · ${submitted} submitted · ${late} late`;
  }

  function scheduleLoad() {
    if (reloadTimer) return;
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      load();
    }, 2000);
  }

  pulseboardLive({ onReload: load, onData: scheduleLoad }).subscribe(`class:${root.dataset.classId}`);
})();
