// The WebSocket client every page shares: subscribes to channels, resumes each one with `since`
// after a drop (reconnecting with backoff), and tells the page when what it shows must be
// reloaded: on the first subscription ("first"), when the server could not replay what was
// missed ("reset"), or after a server restart, seen as a new epoch ("restart"). When access is
// taken away ("revoked") it stops following that channel, or, for the whole connection (or
// when the session is gone), stops reconnecting and asks to log in again. A subscription the
// server could not check ("unavailable") is asked again with backoff.
// The connection state is shown in the page's #connection element.
"use strict";

window.pulseboardLive = function pulseboardLive({ onData, onReload = () => {} }) {
  const lastSeq = new Map(); // channel -> last sequence number seen; null until subscribed
  const retries = new Map(); // channel -> the wait before subscribing again after "unavailable"
  let epoch = null;
  let socket = null;
  let backoff = 500;
  let ended = false;

  function setState(state, text) {
    const element = document.getElementById("connection");
    if (!element) return;
    element.dataset.state = state;
    element.textContent = text;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function subscribe(channel) {
    if (!lastSeq.has(channel)) lastSeq.set(channel, null);
    send({ op: "subscribe", channel, since: lastSeq.get(channel) ?? undefined, epoch: epoch ?? undefined });
  }

  function receive(message) {
    switch (message.type) {
      case "subscribed": {
        retries.delete(message.channel);
        setState("live", "live");
        const reason = lastSeq.get(message.channel) == null ? "first" : epoch && message.epoch !== epoch ? "restart" : null;
        epoch = message.epoch;
        if (reason) {
          lastSeq.set(message.channel, message.seq);
          onReload(message.channel, reason);
        }
        break;
      }
      case "reset":
        lastSeq.set(message.channel, message.seq);
        if (message.epoch) epoch = message.epoch;
        onReload(message.channel, "reset");
        break;
      case "data":
        lastSeq.set(message.channel, message.seq);
        onData(message);
        break;
      case "error":
        console.warn("pulseboard:", message.code, message.message);
        if (message.code === "unavailable" && message.channel) {
          // The server could not check the subscription: ask again, later each time.
          const delay = (retries.get(message.channel) ?? 500);
          retries.set(message.channel, Math.min(delay * 2, 10_000));
          setState("offline", "waiting for the server…");
          setTimeout(() => subscribe(message.channel), delay);
        } else if (message.code === "revoked" && message.channel) {
          lastSeq.delete(message.channel);
          setState("offline", "no longer allowed: " + message.message);
        } else if (message.code === "revoked" || message.code === "unauthenticated") {
          ended = true;
          setState("offline", "access ended: log in again");
        }
        break;
    }
  }

  function connect() {
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    socket.onopen = () => {
      backoff = 500;
      for (const channel of lastSeq.keys()) subscribe(channel);
    };
    socket.onmessage = (event) => receive(JSON.parse(event.data));
    socket.onclose = () => {
      if (ended) return;
      setState("offline", "reconnecting…");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10_000);
    };
  }

  connect();
  return { subscribe };
};
