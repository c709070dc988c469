"""PromQL side by side with the real Prometheus: the same generated series go into Debian's
Prometheus (2.42, through `promtool tsdb create-blocks-from openmetrics`) and into a built
Pulseboard (through its JSON ingest), then every query of scripts/promql_corpus.txt is asked of
both through the HTTP API, as instant queries at six times (aligned and not, near the start,
at the end, within and past the 5-minute lookback after the data ends) and as two range queries,
and the answers are compared: the same result type, the same series (labels), timestamps and
values (to 1e-9 relative, for float rounding in another summation order), or the same error
type. Prints each disagreement and the number of queries that agree; exits 1 on any difference.

The series: counters with random increments (two with resets, one that starts late, one that
stops early), gauges (a random walk with two decimals, integers with zeros, one with gaps and
irregular intervals), `up`, and a classic histogram (buckets, sum, count), 15 s apart over three
hours that end an hour ago.
"""
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from pulseboard_process import Server, free_port

CORPUS = os.path.join(os.path.dirname(__file__), "promql_corpus.txt")
INTERVAL_MS = 15_000


def generate(start_ms, end_ms):
    """{(name, ((label, value), …)): [(ms, value), …]}"""
    rng = random.Random(20261207)
    series = {}
    times = list(range(start_ms, end_ms + 1, INTERVAL_MS))

    def add(name, labels, samples):
        series[(name, tuple(sorted(labels.items())))] = samples

    def counter(steps, low, high, resets=()):
        value, out = 0.0, []
        for index, t in enumerate(steps):
            value = round(rng.uniform(0, 3), 3) if index in resets else round(value + rng.uniform(low, high), 3)
            out.append((t, value))
        return out

    for instance in "abc":
        add("http_requests_total", {"job": "api", "instance": instance, "code": "200"}, counter(times, 0, 20))
        add("http_requests_total", {"job": "api", "instance": instance, "code": "500"}, counter(times, 0, 3))
        add("up", {"job": "api", "instance": instance}, [(t, 0.0 if rng.random() < 0.05 else 1.0) for t in times])
    add("resetting_counter", {"job": "api", "instance": "a", "code": "200"}, counter(times, 1, 5, resets={100, 250, 600}))
    add("late_starter", {"job": "api"}, counter(times[len(times) // 2:], 1, 2))
    add("stopped_early", {"job": "api"}, counter(times[:len(times) // 3], 1, 2))
    for room, base in (("lab", 20.0), ("office", 21.0), ("server", 19.0)):
        value, samples = base, []
        for t in times:
            value = round(value + rng.uniform(-0.5, 0.5), 2)
            samples.append((t, value))
        add("node_temperature_celsius", {"room": room}, samples)
    for queue in "xy":
        add("queue_depth", {"queue": queue}, [(t, float(rng.choice([0, 0, 1, 2, 3, 5]))) for t in times])
    gappy, t, value = [], start_ms, 5.0
    while t <= end_ms:
        if (t - start_ms) // 60_000 % 40 < 30:  # 30 minutes of data, then 10 without
            value = round(value + rng.uniform(-1, 1), 2)
            gappy.append((t, value))
        t += rng.choice([7_000, 23_000, 15_000])
    add("gappy_gauge", {"job": "api"}, gappy)
    bounds = ["0.1", "0.5", "1", "+Inf"]
    for instance in "ab":
        counts, total, observations = [0.0] * 4, 0.0, 0.0
        buckets = {bound: [] for bound in bounds}
        sums, numbers = [], []
        for t in times:
            for _ in range(rng.randint(0, 6)):
                duration = rng.expovariate(3)
                observations += 1
                total = round(total + duration, 6)
                for index, bound in enumerate(bounds):
                    if bound == "+Inf" or duration <= float(bound):
                        counts[index] += 1
            for index, bound in enumerate(bounds):
                buckets[bound].append((t, counts[index]))
            sums.append((t, total))
            numbers.append((t, observations))
        for bound in bounds:
            add("request_duration_seconds_bucket", {"job": "api", "instance": instance, "le": bound}, buckets[bound])
        add("request_duration_seconds_sum", {"job": "api", "instance": instance}, sums)
        add("request_duration_seconds_count", {"job": "api", "instance": instance}, numbers)
    return series


def openmetrics(series):
    lines = []
    for name in sorted({name for name, _ in series}):
        lines.append(f"# TYPE {name} unknown")
        for (family, labels), samples in sorted(series.items()):
            if family != name:
                continue
            rendered = ",".join(f'{key}="{value}"' for key, value in labels)
            for ms, value in samples:
                lines.append(f"{name}{{{rendered}}} {value!r} {ms // 1000}.{ms % 1000:03d}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class Prometheus:
    def __init__(self, series):
        self.folder = tempfile.mkdtemp(prefix="pulseboard-promql-")
        data = os.path.join(self.folder, "data")
        source = os.path.join(self.folder, "series.om")
        with open(source, "w") as f:
            f.write(openmetrics(series))
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", source, data], check=True, stdout=subprocess.DEVNULL)
        config = os.path.join(self.folder, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1m\n")
        self.port = free_port()
        self.log = open(os.path.join(self.folder, "prometheus.log"), "ab")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise SystemExit("Prometheus did not become ready")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def load_pulseboard(server, token, series):
    points = []
    for (name, labels), samples in series.items():
        tags = dict(labels)
        for ms, value in samples:
            points.append({"name": name, "value": value, "timestamp": iso(ms), "tags": tags})
    for start in range(0, len(points), 5000):
        status, body = server.request("POST", "/api/v1/metrics", points[start:start + 5000], token=token, timeout=60)
        assert status == 200, body


def ask(base, path, params, headers):
    request = urllib.request.Request(base + path, data=urllib.parse.urlencode(params).encode(), method="POST", headers=headers)
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def has_data(answer):
    if answer["status"] != "success":
        return False
    result = answer["data"]["result"]
    return bool(result) and answer["data"]["resultType"] in ("vector", "matrix", "scalar")


def same_value(a, b):
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))


def difference(expected, got):
    """None when the answers agree, else what differs."""
    if expected["status"] != got["status"]:
        return f"status {got['status']} ({got.get('error')}), Prometheus {expected['status']} ({expected.get('error')})"
    if expected["status"] == "error":
        return None if expected["errorType"] == got["errorType"] else f"errorType {got['errorType']}, Prometheus {expected['errorType']}"
    kind, result = expected["data"]["resultType"], expected["data"]["result"]
    if got["data"]["resultType"] != kind:
        return f"resultType {got['data']['resultType']}, Prometheus {kind}"
    if kind in ("scalar", "string"):
        ok = result[0] == got["data"]["result"][0] and (same_value(result[1], got["data"]["result"][1]) if kind == "scalar" else result[1] == got["data"]["result"][1])
        return None if ok else f"{got['data']['result']}, Prometheus {result}"
    key = (lambda s: json.dumps(s["metric"], sort_keys=True))
    theirs, ours = {key(s): s for s in result}, {key(s): s for s in got["data"]["result"]}
    if set(theirs) != set(ours):
        return f"series only in Pulseboard {sorted(set(ours) - set(theirs))[:3]}, only in Prometheus {sorted(set(theirs) - set(ours))[:3]}"
    for labels, series in theirs.items():
        a = series["values"] if kind == "matrix" else [series["value"]]
        b = ours[labels]["values"] if kind == "matrix" else [ours[labels]["value"]]
        if len(a) != len(b):
            return f"{labels}: {len(b)} samples, Prometheus {len(a)}"
        for (ta, va), (tb, vb) in zip(a, b):
            if ta != tb or not same_value(va, vb):
                return f"{labels} at {ta}: {tb} {vb}, Prometheus {ta} {va}"
    return None


def main():
    end_ms = (int(time.time()) // 60 - 60) * 60_000 + 7_000  # an hour ago, not on a minute
    start_ms = end_ms - 3 * 3_600_000
    series = generate(start_ms, end_ms)
    queries = [line.strip() for line in open(CORPUS) if line.strip() and not line.startswith("#")]
    prometheus = Prometheus(series)
    server = Server(extra_args=["--no-host-metrics"]).start()
    try:
        admin = server.login()
        load_pulseboard(server, admin, series)
        instants = [start_ms + 120_000, start_ms + 3_600_000 - 7_000, start_ms + 5_833_500, end_ms, end_ms + 240_000, end_ms + 600_000]
        ranges = [(start_ms, end_ms + 600_000, 60_000), (start_ms + 3_600_000 + 1_500, end_ms - 11_000, 137_000)]
        evaluations = [("/query", {"time": f"{t / 1000:.3f}"}) for t in instants]
        evaluations += [("/query_range", {"start": f"{a / 1000:.3f}", "end": f"{b / 1000:.3f}", "step": f"{s / 1000:g}"}) for a, b, s in ranges]
        agreeing, with_data = 0, 0
        for query in queries:
            problems = []
            for path, params in evaluations:
                params = dict(params, query=query)
                expected = ask(prometheus.url, "/api/v1" + path, params, {})
                got = ask(server.url, "/prometheus/api/v1" + path, params, {"Authorization": "Bearer " + admin})
                problem = difference(expected, got)
                with_data += has_data(expected)
                if problem:
                    problems.append(f"{path} {params}: {problem}")
            if problems:
                print(f"DIFFERS {query}\n    " + "\n    ".join(problems[:3]), flush=True)
            else:
                agreeing += 1
        print(f"promql: {agreeing} of {len(queries)} queries agree with Prometheus "
              f"({len(evaluations)} evaluations each: {len(instants)} instant, {len(ranges)} range; {sum(len(s) for s in series.values())} samples "
              f"in {len(series)} series; {with_data} of {len(queries) * len(evaluations)} evaluations answered data, the others "
              f"nothing or an error)")
        print("1 passed, 0 failed" if agreeing == len(queries) else "0 passed, 1 failed")
        return 0 if agreeing == len(queries) else 1
    finally:
        server.stop()
        prometheus.stop()


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


if __name__ == "__main__":
    sys.exit(main())
