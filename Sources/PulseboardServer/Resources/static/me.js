// A student's own page: their place in each class (from /api/v1/me/progress), then live their
// own events (`progress:<email>`), their notifications and the admins' announcements
// (`broadcast`). Event text only ever goes through textContent.
"use strict";

(() => {
  const root = document.getElementById("me");
  const email = root.dataset.email.toLowerCase();
  const channels = [`progress:${email}`, `notifications:${root.dataset.userId}`, "broadcast"];
  const lastSeq = new Map();
  let epoch = null;

  const element = (tag, className, text) => Object.assign(document.createElement(tag), { className: className || "", textContent: text ?? "" });

  async function load() {
    const response = await fetch("/api/v1/me/progress");
    if (!response.ok) return;
    const { classes } = await response.json();
    if (!classes.length) return;
    document.getElementById("my-classes").replaceChildren(
      ...classes.map(({ className, progress }) => {
        const card = element("div", "card");
        card.dataset.status = progress.status;
        card.append(element("div", "name", className));
        card.append(element("div", "detail", progress.notebook ? `${progress.notebook} · cell ${progress.cellIndex ?? "–"}` : "no notebook yet"));
        card.append(element("div", "detail", `${progress.cellsExecuted} cells run · ${progress.recentErrors} recent errors`));
        if (progress.helpRequest) card.append(element("div", "detail", "help requested"));
        return card;
      }),
    );
  }

  function show(message) {
    const data = message.data;
    if (message.channel === "broadcast" || message.channel.startsWith("notifications:")) {
      const note = element("div", "panel", data.message || data.title || JSON.stringify(data));
      document.getElementById("announcements").prepend(note);
      return;
    }
    const item = element("li", data.hasError ? "error" : "");
    const where = data.cellIndex != null ? ` · cell ${data.cellIndex}` : "";
    item.textContent = `${new Date(data.eventTime).toLocaleTimeString()} ${data.eventType}${where}${data.errorMessage ? ` — ${data.errorMessage}` : ""}`;
    const feed = document.getElementById("my-events");
    feed.prepend(item);
    while (feed.children.length > 50) feed.lastChild.remove();
    load();
  }

  let backoff = 500;
  function connect() {
    const state = document.getElementById("connection");
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    socket.onopen = () => {
      backoff = 500;
      for (const channel of channels) {
        socket.send(JSON.stringify({ op: "subscribe", channel, since: lastSeq.get(channel) ?? undefined, epoch: epoch ?? undefined }));
      }
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "subscribed") {
        state.textContent = "live";
        state.dataset.state = "live";
        epoch = message.epoch;
        if (!lastSeq.has(message.channel)) lastSeq.set(message.channel, message.seq);
      } else if (message.type === "reset") {
        lastSeq.set(message.channel, message.seq);
        load();
      } else if (message.type === "data") {
        lastSeq.set(message.channel, message.seq);
        show(message);
      }
    };
    socket.onclose = () => {
      state.textContent = "reconnecting…";
      state.dataset.state = "offline";
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10_000);
    };
  }

  load();
  connect();
})();
