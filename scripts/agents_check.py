"""The agents operators already run, against a built Pulseboard on loopback:

1. the InfluxDB client libraries from PyPI write through the 2.x API (`influxdb-client`, gzip on)
   and the 1.x API (`influxdb`, which creates its database first and authenticates with HTTP
   Basic): escaped tags, every field type; the points are read back through Pulseboard's
   history API and compared exactly (values, timestamps, tags);
2. Debian's Prometheus scrapes Debian's node_exporter every second and remote-writes to
   Pulseboard; the samples of node_cpu_seconds_total that Pulseboard stored must be the ones
   Prometheus holds (asked through Prometheus's own HTTP API), a series must arrive live on a
   WebSocket subscription, and no sample may have been refused.
"""
import calendar
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import websocket
from influxdb import InfluxDBClient as InfluxV1
from influxdb_client import InfluxDBClient as InfluxV2
from influxdb_client import Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from pulseboard_process import Server, free_port

# 2026-01-01T00:00:00Z, in nanoseconds; every point a whole millisecond (Pulseboard keeps milliseconds).
BASE_NS = 1_767_225_600_000_000_000
TAGS = {"room": "eu west", "rack": "a,b", "k=v": "x=y", "path": "C:\\temp"}


def main():
    server = Server(extra_args=["--no-host-metrics"]).start()
    failures = []
    try:
        admin = server.login()
        status, created = server.request("POST", "/api/v1/tokens", {"name": "agents"}, token=admin)
        assert status == 201, created
        token = created["token"]
        for check in (influx_v2_client, influx_v1_client, prometheus_remote_write):
            try:
                print(check(server, admin, token), flush=True)
            except AssertionError as error:
                failures.append(f"{check.__name__}: {error}")
                print(f"FAILED {check.__name__}: {error}", flush=True)
    finally:
        server.stop()
    print(f"{3 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def influx_v2_client(server, admin, token):
    points = [
        Point("sensor").tag("room", TAGS["room"]).tag("rack", TAGS["rack"]).tag("k=v", TAGS["k=v"]).tag("path", TAGS["path"])
        .field("temp", 21.5 + i / 8).field("count", 40 + i).field("ok", i % 2 == 0).field("note", f"a \"quoted\", text {i}")
        .time(BASE_NS + i * 1_000_000_000 + 7_000_000, WritePrecision.NS)
        for i in range(50)
    ]
    with InfluxV2(url=server.url, token=token, org="pulseboard", enable_gzip=True) as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(bucket="agents", record=points)
        # Unsigned integers: the client has no type for them, so a line of its own.
        write.write(bucket="agents", record=f"sensor,room=lab serial=18446744073709551615u {BASE_NS}")
    expect_series(server, admin, "sensor.temp", TAGS, [(BASE_NS + i * 1_000_000_000 + 7_000_000, 21.5 + i / 8) for i in range(50)])
    expect_series(server, admin, "sensor.count", TAGS, [(BASE_NS + i * 1_000_000_000 + 7_000_000, 40 + i) for i in range(50)])
    expect_series(server, admin, "sensor.ok", TAGS, [(BASE_NS + i * 1_000_000_000 + 7_000_000, 1 - i % 2) for i in range(50)])
    expect_series(server, admin, "sensor.serial", {"room": "lab"}, [(BASE_NS, 18446744073709551615.0)])
    # String fields are not kept.
    assert history(server, admin, "sensor.note") == [], "a string field was stored"
    return "influxdb-client (2.x API, gzip): 50 points x 3 numeric fields + 1 unsigned read back exactly, escaped tags kept"


def influx_v1_client(server, admin, token):
    client = InfluxV1(host="127.0.0.1", port=server.port, username="telegraf", password=token, database="legacy")
    client.create_database("legacy")
    points = [
        {"measurement": "plant", "tags": TAGS, "time": BASE_NS // 1_000_000 + 500 + i * 250, "fields": {"flow": i * 0.25 - 3, "pumps": i, "on": True}}
        for i in range(40)
    ]
    assert client.write_points(points, time_precision="ms"), "write_points failed"
    client.close()
    expect_series(server, admin, "plant.flow", TAGS, [((BASE_NS // 1_000_000 + 500 + i * 250) * 1_000_000, i * 0.25 - 3) for i in range(40)])
    expect_series(server, admin, "plant.pumps", TAGS, [((BASE_NS // 1_000_000 + 500 + i * 250) * 1_000_000, i) for i in range(40)])
    return "influxdb (1.x API, CREATE DATABASE, Basic auth, precision ms): 40 points x 3 fields read back exactly"


def prometheus_remote_write(server, admin, token):
    folder = tempfile.mkdtemp(prefix="pulseboard-prometheus-")
    exporter_port, prometheus_port = free_port(), free_port()
    config = os.path.join(folder, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
remote_write:
  - url: {server.url}/prometheus/api/v1/write
    authorization:
      credentials: {token}
    queue_config:
      batch_send_deadline: 1s
""")
    log = open(os.path.join(folder, "processes.log"), "ab")
    exporter = subprocess.Popen(["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{exporter_port}"], stdout=log, stderr=log)
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder}/data", f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdout=log, stderr=log)
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    live = LiveWatch(server, admin, "metrics:node_load1")
    try:
        # Live: the subscription sees samples as they are committed.
        deadline = time.time() + 60
        while time.time() < deadline and not live.received():
            time.sleep(0.5)
        assert live.received(), "no live message on metrics:node_load1 within 60 s"

        # Stored: wait for a few remote-write rounds, then compare with what Prometheus holds.
        selector = {"cpu": "0", "mode": "idle"}
        deadline = time.time() + 60
        stored = []
        while time.time() < deadline and len(stored) < 8:
            time.sleep(1)
            stored = history(server, admin, "node_cpu_seconds_total", tags=selector)
        assert len(stored) >= 8, f"only {len(stored)} samples of node_cpu_seconds_total{{cpu=0,mode=idle}} arrived within 60 s"
        first, last = stored[0][0], stored[-1][0]
        query = urllib.parse.urlencode({"query": 'node_cpu_seconds_total{cpu="0",mode="idle"}[10m]', "time": last / 1000})
        with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=10) as response:
            result = json.loads(response.read())["data"]["result"]
        assert len(result) == 1, f"Prometheus holds {len(result)} series for the selector"
        held = [(round(float(t) * 1000), float(v)) for t, v in result[0]["values"] if first <= round(float(t) * 1000) <= last]
        assert held == stored, f"Pulseboard stored {stored[:3]}… but Prometheus holds {held[:3]}… over the same range"

        # Nothing refused: Prometheus counts failed and dropped samples, Pulseboard its 4xx answers.
        failed = prometheus_value(prometheus_url, "sum(prometheus_remote_storage_samples_failed_total)")
        assert failed == 0, f"Prometheus counts {failed} failed samples"
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
            refused = [line for line in response.read().decode().splitlines()
                       if line.startswith("http_requests_total") and "/prometheus/api/v1/write" in line and 'status="204"' not in line]
        assert not refused, f"Pulseboard refused remote writes: {refused}"
        names = prometheus_value(prometheus_url, 'count(count by (__name__) ({__name__=~"node_.+"}))')
        status, listed = server.request("GET", "/api/v1/series", token=admin)
        kept = len({s["name"] for s in listed["series"] if s["name"].startswith("node_")})
        assert kept == names, f"Prometheus has {names} node_ metric names, Pulseboard {kept}"
        return (f"prometheus {version('prometheus')} + node_exporter: {len(stored)} samples of node_cpu_seconds_total identical to "
                f"Prometheus's, all {names:.0f} node_ metric names stored, a live message on the WebSocket, no sample refused")
    finally:
        live.close()
        for process in (prometheus, exporter):
            process.terminate()
            process.wait(timeout=30)


def expect_series(server, admin, name, tags, expected):
    """The series of `name` with exactly these tags holds exactly these (ns timestamp, value) points."""
    got = history(server, admin, name, exact_tags=tags)
    want = [(ns // 1_000_000, float(value)) for ns, value in expected]
    assert got == want, f"{name}{tags}: got {got[:3]}… ({len(got)}), want {want[:3]}… ({len(want)})"


def history(server, admin, name, tags=None, exact_tags=None):
    """(ms, value) points of the series of `name` (with `tags` among its tags, or exactly `exact_tags`)."""
    query = {"name": name, "from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "maxPoints": "10000"}
    if tags:
        query["tags"] = ",".join(f"{k}={v}" for k, v in tags.items())
    status, body = server.request("GET", "/api/v1/metrics?" + urllib.parse.urlencode(query), token=admin)
    assert status == 200, body
    series = [s for s in body["series"] if exact_tags is None or s["tags"] == exact_tags]
    assert len(series) <= 1, f"{len(series)} series match {name} {tags or exact_tags}"
    return [(iso_ms(p["timestamp"]), p["value"]) for s in series for p in s.get("points") or []]


def prometheus_value(url, expression):
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expression}), timeout=10) as response:
        result = json.loads(response.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else 0


def version(command):
    return subprocess.run([command, "--version"], capture_output=True, text=True).stdout.split()[2]


def iso_ms(text):
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(text[20:23])


class LiveWatch:
    """A WebSocket subscription, as the dashboard makes it, that remembers whether data arrived."""

    def __init__(self, server, token, channel):
        self.ws = websocket.create_connection(server.url.replace("http://", "ws://") + "/ws", timeout=1)
        self.ws.send(json.dumps({"op": "auth", "token": token}))
        self.ws.send(json.dumps({"op": "subscribe", "channel": channel}))
        self.data = False

    def received(self):
        try:
            while not self.data:
                self.data = json.loads(self.ws.recv()).get("type") == "data"
        except websocket.WebSocketTimeoutException:
            pass
        return self.data

    def close(self):
        self.ws.close()


if __name__ == "__main__":
    sys.exit(main())
