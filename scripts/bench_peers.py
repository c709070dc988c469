"""Metric ingest side by side: Pulseboard, InfluxDB 1.x and VictoriaMetrics on this machine, in
the same run, each on loopback with a fresh data folder, driven by the same external load
generator (wrk, its own process) with the same points: batches of --batch points of --series
series (one tag each), every point of the run a new (series, timestamp). Prints points/s per
system, the ratio to Pulseboard, the data folder's bytes per point after a graceful stop (after
compaction for Pulseboard) and the server's peak resident memory.

Systems: Pulseboard's JSON (`pulseboard`, the reference of the ratios), Pulseboard's line
protocol (`pulseboard-line`, the same body InfluxDB and VictoriaMetrics get), Pulseboard on
PostgreSQL; and Prometheus remote write (`*-remote-write`): snappy-compressed protobuf bodies
made before the run (PyPI's cramjam compresses them), each request --batch series of one sample
at a new timestamp, as Prometheus sends a scrape of many series, to Pulseboard, VictoriaMetrics
and InfluxDB's 1.x `/api/v1/prom/write`.

Each system runs as Debian ships it: InfluxDB fsyncs its WAL before it answers (as Pulseboard
commits); VictoriaMetrics answers once a point is in memory and writes to disk about every
second, so its figure is not for an acknowledgement that means durable.

    python3 scripts/bench_peers.py [--seconds 10] [--connections 8] [--batch 1000] [--series 10]
                                   [--only pulseboard pulseboard-line pulseboard-no-request-log pulseboard-postgres influxdb victoria-metrics
                                           pulseboard-remote-write influxdb-remote-write victoria-metrics-remote-write]

Needs `wrk`, `influxdb` and `victoria-metrics` (Debian packages: installed when missing and
run as root) and a release build (`swift build -c release`, or PULSEBOARD_BIN)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import remote_write  # noqa: E402
from postgres_server import Postgres  # noqa: E402
from pulseboard_process import Server, free_port  # noqa: E402

WRK_THREADS = 2
# Seconds after its newest point before Pulseboard compacts a chunk (60 by default): short, so
# that the run's chunks are compacted before the data folder is measured.
COMPACT_AFTER = 2
PACKAGES = {"wrk": "wrk", "influxd": "influxdb", "victoria-metrics": "victoria-metrics"}

# A wrk script that builds each request's body: --batch points, point i of series i % series,
# timestamps that no other request of any wrk thread repeats (a second per request, the point's
# index as its milliseconds), values a random walk per series with two decimals, as a sensor
# sends (regular values would flatter every compressor). FORMAT is "json" (Pulseboard) or
# "line" (line protocol).
# Numbers wrk's threads 0, 1, … (`id` in each thread): every script here starts with it.
THREAD_IDS = r"""
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
"""

WRK_SCRIPT = THREAD_IDS + r"""
local counter = 0
function init(args)
  id = tonumber(wrk.thread:get("id")) or 0
  math.randomseed(id + 1)
  prefixes = {}
  millis = {}
  walk = {}
  for i = 0, BATCH - 1 do
    if FORMAT == "json" then
      prefixes[i] = '{"name":"bench.value","tags":{"host":"h' .. (i % SERIES) .. '"},"value":'
    else
      prefixes[i] = "bench,host=h" .. (i % SERIES) .. " value="
    end
    millis[i] = string.format("%03d", i % 1000)
  end
  for series = 0, SERIES - 1 do walk[series] = 50 end
end
function request()
  local second = BASE + (counter * THREADS + id) * math.ceil(BATCH / 1000)
  counter = counter + 1
  local parts = {}
  for i = 0, BATCH - 1 do
    local s = second + math.floor(i / 1000)
    local series = i % SERIES
    walk[series] = walk[series] + math.random() - 0.5
    local value = string.format("%.2f", walk[series])
    if FORMAT == "json" then
      parts[#parts + 1] = prefixes[i] .. value .. ',"timestamp":"' .. os.date("!%Y-%m-%dT%H:%M:%S", s) .. "." .. millis[i] .. 'Z"}'
    else
      parts[#parts + 1] = prefixes[i] .. value .. " " .. s .. millis[i]
    end
  end
  local body = FORMAT == "json" and ("[" .. table.concat(parts, ",") .. "]") or table.concat(parts, "\n")
  return wrk.format("POST", PATH, HEADERS, body)
end
"""


# A wrk script that sends prepared bodies (files BODIES/<thread>-<n>), each once, in order.
FILES_SCRIPT = THREAD_IDS + r"""
function init(args)
  id = tonumber(wrk.thread:get("id")) or 0
  bodies = {}
  for n = 0, COUNT - 1 do
    local file = io.open(BODIES .. "/" .. id .. "-" .. n, "rb")
    bodies[n] = file:read("*a")
    file:close()
  end
  sent = 0
end
function request()
  local body = bodies[sent % COUNT]
  sent = sent + 1
  return wrk.format("POST", PATH, HEADERS, body)
end
"""

# Prepared remote-write bodies per wrk thread: enough for this many samples a second.
REMOTE_WRITE_CEILING = 1_200_000


def install_missing():
    missing = [package for binary, package in PACKAGES.items() if not shutil.which(binary)]
    if missing:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True, stdout=subprocess.DEVNULL)


def wait_until(url, accept=(200, 204)):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status in accept:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within 60 s")


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names
               if os.path.isfile(os.path.join(root, name)))


def peak_rss_mb(pid):
    """The most memory the process has held resident (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def run_wrk(url, path, body_format, headers, args, server_pid):
    """Drives a server with wrk; `body_format` is "json" or "line" (bodies made by the Lua script)
    or "remote-write" (prepared bodies)."""
    lua_headers = "{" + ", ".join(f'["{key}"] = "{value}"' for key, value in headers.items()) + "}"
    prepared = None
    if body_format == "remote-write":
        prepared = tempfile.mkdtemp(prefix="bench-bodies-")
        count = prepare_remote_write_bodies(prepared, args)
        script = f"BODIES = \"{prepared}\"\nCOUNT = {count}\nPATH = \"{path}\"\nHEADERS = {lua_headers}\n" + FILES_SCRIPT
    else:
        # Points are stamped from a day ago on, so no system refuses them as from the future.
        base = int(time.time()) - 86_400
        script = (f"BATCH = {args.batch}\nSERIES = {args.series}\nTHREADS = {WRK_THREADS}\nBASE = {base}\nFORMAT = \"{body_format}\"\n"
                  f"PATH = \"{path}\"\nHEADERS = {lua_headers}\n" + WRK_SCRIPT)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    with tempfile.TemporaryFile("w+") as captured:
        wrk = subprocess.Popen(["wrk", "-t", str(WRK_THREADS), "-c", str(args.connections), "-d", f"{args.seconds}s", "--latency", "-s", file.name, url],
                               stdout=captured, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(wrk.pid, 0)
        captured.seek(0)
        output = captured.read()
    os.unlink(file.name)
    if prepared:
        shutil.rmtree(prepared, ignore_errors=True)
    if status != 0:
        raise RuntimeError("wrk failed: " + output)
    summary = wrk_summary(output)
    if prepared and summary["requests"] > count * WRK_THREADS:
        print(f"warning: {summary['requests']} requests sent {count * WRK_THREADS} prepared bodies again; raise REMOTE_WRITE_CEILING", flush=True)
    ok = summary["requests"] - summary["failed"]
    return {"points": ok * args.batch, "rate": ok * args.batch / args.seconds, "p50": summary["p50"], "p99": summary["p99"],
            "rss": peak_rss_mb(server_pid), "failed": summary["failed"], "socket_errors": summary["socket_errors"],
            "generator_cpu": (usage.ru_utime + usage.ru_stime) / args.seconds}


def wrk_summary(output):
    """What wrk printed: requests sent, those answered other than 2xx/3xx, socket errors, p50, p99."""
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: .*", output)
    return {"requests": int(re.search(r"(\d+) requests in", output).group(1)), "failed": int(failed.group(1)) if failed else 0,
            "socket_errors": errors.group(0) if errors else "",
            "p50": re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1),
            "p99": re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)}


def prepare_remote_write_bodies(folder, args):
    """Snappy-compressed protobuf WriteRequests: per wrk thread, bodies of --batch series
    (`bench_value{host="h<i>",job="bench"}`) with one sample each, a new timestamp per body
    (a millisecond apart, from a day ago), values a random walk with two decimals. Answers how
    many bodies each thread has."""
    import random

    labels = [remote_write.label("__name__", "bench_value") + remote_write.label("host", f"h{i}") + remote_write.label("job", "bench")
              for i in range(args.batch)]
    count = max(1, REMOTE_WRITE_CEILING * args.seconds // args.batch // WRK_THREADS)
    base = (int(time.time()) - 86_400) * 1000
    rng = random.Random(1)
    walk = [50.0] * args.batch
    for thread in range(WRK_THREADS):
        for n in range(count):
            timestamp = base + n * WRK_THREADS + thread
            series = []
            for i in range(args.batch):
                walk[i] += rng.random() - 0.5
                series.append(remote_write.series(labels[i], remote_write.sample(round(walk[i], 2), timestamp)))
            with open(os.path.join(folder, f"{thread}-{n}"), "wb") as file:
                file.write(remote_write.body(series))
    return count


def pulseboard(args, extra_args=(), protocol="json"):
    binary = os.environ.get("PULSEBOARD_BIN", ".build/release/pulseboard")
    server = Server(binary=binary, extra_args=["--no-host-metrics", "--log-level", "warning", "--compact-after", str(COMPACT_AFTER),
                                               *extra_args]).start()
    try:
        admin = server.login()
        status, body = server.request("POST", "/api/v1/tokens", {"name": "bench"}, token=admin)
        assert status == 201, body
        if protocol == "json":
            headers = {"Authorization": "Bearer " + body["token"], "Content-Type": "application/json"}
            result = run_wrk(server.url, "/api/v1/metrics", "json", headers, args, server.process.pid)
        elif protocol == "line":
            headers = {"Authorization": "Token " + body["token"]}
            result = run_wrk(server.url, "/write?db=bench&precision=ms", "line", headers, args, server.process.pid)
        else:
            headers = {"Authorization": "Bearer " + body["token"], **remote_write.HEADERS}
            result = run_wrk(server.url, "/prometheus/api/v1/write", "remote-write", headers, args, server.process.pid)
        # The bytes are counted after compaction, as a server that runs on keeps them.
        time.sleep(3 * COMPACT_AFTER)
    finally:
        server.stop()
    result["bytes"] = folder_bytes(server.data_dir)
    shutil.rmtree(server.data_dir, ignore_errors=True)
    return result


def pulseboard_postgres(args):
    """Pulseboard on a throwaway PostgreSQL cluster (Debian's, fsync on, as shipped); the bytes
    are what the cluster's folder grew by, write-ahead log included."""
    postgres = Postgres().start()
    try:
        before = folder_bytes(postgres.data)
        result = pulseboard(args, ["--database-url", postgres.url()])
        subprocess.run(["psql", postgres.url(), "-q", "-c", "CHECKPOINT"], check=True)
        result["bytes"] = folder_bytes(postgres.data) - before
    finally:
        postgres.stop()
        shutil.rmtree(postgres.dir, ignore_errors=True)
    return result


def influxdb(args, protocol="line"):
    directory = tempfile.mkdtemp(prefix="bench-influxdb-")
    port = free_port()
    config = os.path.join(directory, "influxdb.conf")
    with open(config, "w") as file:
        file.write(f"reporting-disabled = true\nbind-address = \"127.0.0.1:{free_port()}\"\n"
                   f"[meta]\n  dir = \"{directory}/meta\"\n"
                   f"[data]\n  dir = \"{directory}/data\"\n  wal-dir = \"{directory}/wal\"\n  query-log-enabled = false\n"
                   f"[http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n")
    process = subprocess.Popen(["influxd", "-config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(url + "/ping")
        urllib.request.urlopen(urllib.request.Request(url + "/query", data=b"q=CREATE+DATABASE+bench", method="POST"), timeout=10)
        if protocol == "line":
            result = run_wrk(url, "/write?db=bench&precision=ms", "line", {}, args, process.pid)
        else:
            result = run_wrk(url, "/api/v1/prom/write?db=bench", "remote-write", remote_write.HEADERS, args, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    result["bytes"] = folder_bytes(directory)
    shutil.rmtree(directory, ignore_errors=True)
    return result


def victoria_metrics(args, protocol="line"):
    directory = tempfile.mkdtemp(prefix="bench-victoria-")
    port = free_port()
    process = subprocess.Popen(["victoria-metrics", f"-storageDataPath={directory}", f"-httpListenAddr=127.0.0.1:{port}",
                                "-loggerLevel=ERROR"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(url + "/health")
        if protocol == "line":
            result = run_wrk(url, "/write?precision=ms", "line", {}, args, process.pid)
        else:
            result = run_wrk(url, "/api/v1/write", "remote-write", remote_write.HEADERS, args, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    result["bytes"] = folder_bytes(directory)
    shutil.rmtree(directory, ignore_errors=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=["pulseboard", "pulseboard-line", "influxdb", "victoria-metrics"],
                        help="systems to run, from " + ", ".join(SYSTEMS))
    args = parser.parse_args()
    install_missing()
    systems = {key: (name.replace("InfluxDB", "InfluxDB " + influx_version()), run) for key, (name, run) in SYSTEMS.items()}
    results = {}
    for key in args.only:
        name, run = systems[key]
        results[key] = (name, run(args))
    print(f"\nMetric ingest, {args.connections} connections, batches of {args.batch} points ({args.series} series; remote write: "
          f"{args.batch} series of one sample), {args.seconds} s each, one after the other on this machine ({os.cpu_count()} cores)\n")
    print("| system | points/s (acknowledged) | × Pulseboard (same protocol) | request p50 | p99 | failed requests | "
          "data folder bytes per point | peak RSS (MB) | wrk CPU (cores) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, (name, result) in results.items():
        # Each system against Pulseboard speaking the same protocol (JSON when it ran no line protocol).
        same = {"json": "pulseboard", "line": "pulseboard-line", "remote-write": "pulseboard-remote-write"}[PROTOCOLS[key]]
        reference = (results.get(same) or results.get("pulseboard") or (None, None))[1]
        ratio = f"{result['rate'] / reference['rate']:.2f}" if reference and reference["rate"] else "–"
        per_point = result["bytes"] / result["points"] if result["points"] else float("nan")
        print(f"| {name} | {int(result['rate']):,} | {ratio} | {result['p50']} | {result['p99']} | {result['failed']} "
              f"{result['socket_errors']} | {per_point:.1f} | {result['rss']:.0f} | {result['generator_cpu']:.2f} |")


SYSTEMS = {
    "pulseboard": ("Pulseboard (SQLite), JSON", pulseboard),
    "pulseboard-line": ("Pulseboard (SQLite), line protocol", lambda args: pulseboard(args, protocol="line")),
    # What the request log costs: the same run with it switched off.
    "pulseboard-no-request-log": ("Pulseboard (SQLite), JSON, --no-request-log", lambda args: pulseboard(args, extra_args=["--no-request-log"])),
    "pulseboard-postgres": ("Pulseboard (PostgreSQL), JSON", pulseboard_postgres),
    "influxdb": ("InfluxDB, line protocol", influxdb),
    "victoria-metrics": ("VictoriaMetrics, line protocol", victoria_metrics),
    "pulseboard-remote-write": ("Pulseboard (SQLite), remote write", lambda args: pulseboard(args, protocol="remote-write")),
    "influxdb-remote-write": ("InfluxDB, remote write", lambda args: influxdb(args, protocol="remote-write")),
    "victoria-metrics-remote-write": ("VictoriaMetrics, remote write", lambda args: victoria_metrics(args, protocol="remote-write")),
}


PROTOCOLS = {key: "json" if key in ("pulseboard", "pulseboard-postgres", "pulseboard-no-request-log") else "remote-write" if key.endswith("remote-write") else "line"
             for key in SYSTEMS}


def influx_version():
    output = subprocess.run(["influxd", "version"], capture_output=True, text=True).stdout
    match = re.search(r"v?(\d+\.\d+\.\d+)", output)
    return match.group(1) if match else ""


if __name__ == "__main__":
    main()
