// The admin's request log: lists requests with the filters of GET /api/v1/logs/requests, links
// the CSV exports to the same filters, and shows one trace (its request and every task step in
// order) when its id is clicked. Opening /logs#<trace id> shows that trace directly.
"use strict";

(() => {
  const { element, when, getJSON } = window.pulseboard;
  const form = document.getElementById("filter");
  const rows = document.querySelector("#requests tbody");

  // The form's filled fields as a query string; local times become ISO-8601 instants.
  function query() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (!value.trim()) continue;
      params.set(name, name === "from" || name === "to" ? new Date(value).toISOString() : value.trim());
    }
    return params;
  }

  async function list() {
    const params = query();
    document.getElementById("requests-csv").href = `/api/v1/logs/requests.csv?${params}`;
    const timeOnly = new URLSearchParams([...params].filter(([name]) => name === "from" || name === "to"));
    document.getElementById("tasks-csv").href = `/api/v1/logs/tasks.csv?${timeOnly}`;
    const response = await window.pulseboard.request("GET", `/api/v1/logs/requests?${params}`);
    const body = await response.json().catch(() => ({}));
    document.getElementById("filter-error").textContent = response.ok ? "" : body.error?.message || `Error ${response.status}`;
    rows.replaceChildren();
    const requests = response.ok ? body.requests : [];
    document.getElementById("no-requests").hidden = requests.length > 0;
    for (const request of requests) {
      const row = element("tr", request.responseStatus >= 500 ? "failed" : "");
      const trace = element("td");
      trace.append(Object.assign(element("a", "", request.traceId), { href: `#${request.traceId}` }));
      row.append(
        element("td", "", when(request.createdAt)), element("td", "", request.method), element("td", "", request.endpoint),
        element("td", "", String(request.responseStatus)), element("td", "", String(request.durationMs)),
        element("td", "", request.userId ?? ""), element("td", "", request.ipAddress), trace);
      rows.append(row);
    }
  }

  async function showTrace(traceId) {
    const trace = await getJSON(`/api/v1/logs/trace/${encodeURIComponent(traceId)}`);
    const panel = document.getElementById("trace");
    panel.hidden = false;
    document.getElementById("trace-id").textContent = traceId;
    const requests = document.getElementById("trace-requests");
    requests.replaceChildren();
    if (!trace) {
      requests.append(element("p", "muted", "Nothing was logged under this trace id."));
      return;
    }
    for (const request of trace.requests) {
      requests.append(
        element("p", "", `${when(request.createdAt)} ${request.method} ${request.endpoint} → ${request.responseStatus} in ${request.durationMs} ms`),
        element("pre", "", `request headers ${request.requestHeader}\nrequest body ${request.requestBody ?? "(not kept)"}\n` +
          `response headers ${request.responseHeader}\nresponse body ${request.responseBody ?? "(not kept)"}`));
    }
    const steps = document.querySelector("#steps tbody");
    steps.replaceChildren();
    document.getElementById("no-steps").hidden = trace.steps.length > 0;
    for (const step of trace.steps) {
      const row = element("tr", step.status === "FAILED" ? "failed" : "");
      const error = element("td", "", step.errorMessage ?? "");
      if (step.stackTrace) error.title = step.stackTrace;
      row.append(
        element("td", "", when(step.createdAt)), element("td", "", step.taskName), element("td", "", String(step.executionOrder)),
        element("td", "", step.stepName), element("td", "", step.status), element("td", "", step.inputData ?? ""),
        element("td", "", step.outputData ?? ""), error);
      steps.append(row);
    }
    panel.scrollIntoView();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    list();
  });
  window.addEventListener("hashchange", () => location.hash.length > 1 && showTrace(location.hash.slice(1)));
  list();
  if (location.hash.length > 1) showTrace(location.hash.slice(1));
})();
