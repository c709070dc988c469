"""Several instances behind nginx, all on loopback: a throwaway PostgreSQL, two Pulseboard
instances and Debian's nginx (deploy/nginx.conf). Points are ingested through the balancer and
through each instance directly; a WebSocket client connected through the balancer must end up
with every point, in order, including across a restart of the instance it is connected to
(it resumes with `since`, or reloads history when the server answers with a reset).
The instances trust nginx (--trusted-proxies): two clients behind it, on their own loopback
addresses, get a login-limit bucket each, and a client that reaches an instance directly cannot
choose its address with the same headers."""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import websocket

from postgres_server import Postgres
from pulseboard_process import Server, free_port

POINTS = 300
SERIES = "lb.check"


def main():
    postgres = Postgres().start()
    url = postgres.create_database("balanced")
    trusted = ["--trusted-proxies", "127.0.0.1"]
    a = Server(extra_args=["--database-url", url, "--no-host-metrics", *trusted]).start()
    b = Server(extra_args=["--database-url", url, "--no-host-metrics", *trusted]).start()
    balancer = Balancer(a.port, b.port).start()
    token = a.login()
    base_ms = int(time.time() * 1000) - 600_000
    client = LiveClient(balancer.url, token, base_ms)
    client.start()
    client.subscribed.wait(10)

    try:
        targets = [balancer.url, a.url, b.url]
        restarted = False
        for i in range(POINTS):
            if i == POINTS // 2:
                connected = which_instance(a, b)
                print(f"restarting the instance the WebSocket is connected to ({connected.url})", flush=True)
                connected.stop()
                connected.start()
                restarted = True
            ingest(targets[i % 3], token, i, base_ms, alternatives=[balancer.url, a.url, b.url])
        assert restarted
        deadline = time.time() + 20
        while time.time() < deadline and client.values() != list(range(POINTS)):
            time.sleep(0.2)
        values = client.values()
        missing = sorted(set(range(POINTS)) - set(values))
        if values != list(range(POINTS)):
            print(f"0 passed, 1 failed: the client has {len(values)} of {POINTS} points; missing {missing[:10]}; resets {client.resets}")
            return 1
        print(f"load balancer: {POINTS} points through nginx and both instances, all received in order "
              f"({client.reconnects} reconnects, {client.resets} resets)")
        client_addresses(balancer, a, b)
        print("2 passed, 0 failed")
        return 0
    finally:
        client.stop()
        balancer.stop()
        a.stop()
        b.stop()
        postgres.stop()


def failed_login(port, source, forwarded_for=None):
    """A login to a new account (so that only the address's limit counts) from the loopback
    address `source`; answers the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    connection.request("POST", "/auth/login", json.dumps({"email": f"nobody-{uuid.uuid4()}@example.com", "password": "wrong"}), headers)
    status = connection.getresponse().status
    connection.close()
    return status


def client_addresses(balancer, a, b):
    # Login limits live in each instance (20 failures per address): through nginx a client is
    # limited once both instances have counted 20, so it gets exactly 40 answers of 401. (Not
    # necessarily the first 40: nginx may still avoid the instance restarted above, so the two
    # need not take turns.)
    statuses = []
    while statuses[-2:] != [429, 429] and len(statuses) < 80:
        statuses.append(failed_login(balancer.port, "127.0.0.2"))
    assert statuses[-2:] == [429, 429] and statuses[:20] == [401] * 20 and statuses.count(401) == 40, statuses
    # Another client behind the same nginx is not: on both instances it has a bucket of its own.
    assert [failed_login(balancer.port, "127.0.0.3") for _ in range(2)] == [401, 401]
    for server in (a, b):
        with open(os.path.join(server.data_dir, "server.log")) as log:
            assert '"remote":"127.0.0.2"' in log.read(), f"{server.url}'s request log does not name the client behind nginx"
    # Directly to an instance, the same headers are the client's own claim: ignored.
    spoofed = [failed_login(a.port, "127.0.0.4", forwarded_for=f"198.51.100.{n}") for n in range(21)]
    assert spoofed[-1] == 429 and spoofed[:20] == [401] * 20, spoofed
    print("load balancer: behind nginx two clients have a login-limit bucket each and the logs name them; "
          "forwarded headers from a client that is not a trusted proxy are ignored")


def ingest(url, token, i, base_ms, alternatives):
    """Posts point i, retrying (with its Idempotency-Key) through the other routes until acknowledged."""
    body = json.dumps([{"name": SERIES, "value": i, "timestamp": iso(base_ms + i * 100)}]).encode()
    routes = [url] + alternatives
    for attempt in range(100):
        request = urllib.request.Request(routes[attempt % len(routes)] + "/api/v1/metrics", data=body, method="POST")
        request.add_header("Authorization", "Bearer " + token)
        request.add_header("Content-Type", "application/json")
        request.add_header("Idempotency-Key", f"lb-{i}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"point {i} was never acknowledged")


def which_instance(a, b):
    for server in (a, b):
        with urllib.request.urlopen(server.url + "/metrics") as response:
            for line in response.read().decode().splitlines():
                if line.startswith("pulseboard_websocket_connections ") and float(line.split()[1]) >= 1:
                    return server
    raise SystemExit("the WebSocket client is connected to neither instance")


class LiveClient(threading.Thread):
    """Keeps a view of the series like the dashboard: history, then live points in timestamp order;
    resumes with `since` after a drop, reloads history after a reset."""

    def __init__(self, base_url, token, base_ms):
        super().__init__(daemon=True)
        self.base_url, self.token, self.base_ms = base_url, token, base_ms
        self.ws_url = base_url.replace("http://", "ws://") + "/ws"
        self.points = {}  # timestamp → value
        self.lock = threading.Lock()
        self.seq, self.epoch = None, None
        self.resets, self.reconnects = 0, 0
        self.subscribed = threading.Event()
        self.running = True

    def values(self):
        with self.lock:
            return [self.points[t] for t in sorted(self.points)]

    def reload_history(self):
        query = f"/api/v1/metrics?name={SERIES}&from={iso(self.base_ms - 1000)}&to={iso(self.base_ms + 3_600_000)}&maxPoints=10000"
        request = urllib.request.Request(self.base_url + query)
        request.add_header("Authorization", "Bearer " + self.token)
        with urllib.request.urlopen(request, timeout=10) as response:
            series = json.loads(response.read())["series"]
        with self.lock:
            self.points = {p["timestamp"]: p["value"] for p in (series[0]["points"] if series else [])}

    def run(self):
        while self.running:
            try:
                ws = websocket.create_connection(self.ws_url, timeout=5)
                self.ws = ws
                ws.send(json.dumps({"op": "auth", "token": self.token}))
                subscribe = {"op": "subscribe", "channel": "metrics:" + SERIES}
                if self.seq is not None:
                    subscribe.update({"since": self.seq, "epoch": self.epoch})
                ws.send(json.dumps(subscribe))
                while self.running:
                    try:
                        text = ws.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if not text:  # the server closed the connection
                        raise websocket.WebSocketConnectionClosedException("closed")
                    message = json.loads(text)
                    kind = message.get("type")
                    if kind == "subscribed":
                        if self.epoch is None:
                            self.reload_history()
                        self.epoch = message["epoch"]
                        if self.seq is None:
                            self.seq = message["seq"]
                        self.subscribed.set()
                    elif kind == "reset":
                        self.resets += 1
                        self.seq = message["seq"]
                        self.reload_history()
                    elif kind == "data":
                        self.seq = message["seq"]
                        with self.lock:
                            for point in message["data"]["points"]:
                                self.points[point["timestamp"]] = point["value"]
            except (OSError, websocket.WebSocketException):
                if not self.running:
                    return
                self.reconnects += 1
                time.sleep(0.3)

    def stop(self):
        self.running = False
        try:
            self.ws.close()
        except Exception:
            pass


class Balancer:
    def __init__(self, port_a, port_b):
        self.prefix = tempfile.mkdtemp(prefix="pulseboard-nginx-")
        self.port = free_port()
        template = open(os.path.join(os.path.dirname(__file__), "..", "deploy", "nginx.conf")).read()
        config = (template.replace("__PREFIX__", self.prefix).replace("__LISTEN__", f"127.0.0.1:{self.port}")
                  .replace("__INSTANCE_A__", f"127.0.0.1:{port_a}").replace("__INSTANCE_B__", f"127.0.0.1:{port_b}"))
        self.config = os.path.join(self.prefix, "nginx.conf")
        with open(self.config, "w") as f:
            f.write(config)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(["nginx", "-c", self.config, "-p", self.prefix],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit("nginx did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait()


def iso(ms):
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


if __name__ == "__main__":
    sys.exit(main())
