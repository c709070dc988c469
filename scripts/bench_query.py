"""PromQL range queries side by side: Pulseboard and Prometheus 2.42 (Debian) on the same data,
100 series scraped every second for --days days (default 7; 60 million samples), the way
Grafana asks them: `query_range` over the last hour and over all the days, with a step that
gives about 1,000 points per series. Prometheus gets the data as TSDB blocks made by
`promtool tsdb create-blocks-from openmetrics`; Pulseboard through its line-protocol ingest
(then a compaction pass). Each query is timed --repeat times from a client process of its own,
one system after the other; prints p50 and p95 per system and query, and the ratio.

    python3 scripts/bench_query.py [--days 7] [--repeat 20]

Needs a release build (`swift build -c release`, or PULSEBOARD_BIN), `prometheus` and `promtool`
(Debian's `prometheus` package). Takes a while: generating, converting and loading the data
is most of it."""
import argparse
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from pulseboard_process import Server, free_port  # noqa: E402

SERIES = 100
QUERIES = [
    "bench_gauge",
    "rate(bench_requests_total[5m])",
    "sum by (group) (rate(bench_requests_total[5m]))",
    "avg_over_time(bench_gauge[10m])",
]


BLOCK_S = 7200


def generate(days, end_s, folder, line_batches):
    """Writes OpenMetrics files, one per two-hour TSDB block (promtool reads its whole input once
    per block it makes, so one file a block keeps it linear), and hands line-protocol bodies of
    10,000 points to `line_batches`. Answers the files."""
    start_s = end_s - days * 86_400
    rng = random.Random(7)
    files = {}

    def openmetrics(second):
        block = second // BLOCK_S
        if block not in files:
            files[block] = open(os.path.join(folder, f"block-{block}.om"), "w")
        return files[block]

    for kind in ("bench_gauge", "bench_requests_total"):
        for handle in list(files.values()):
            handle.write(f"# TYPE {kind} unknown\n")
        headed = set(files)
        for index in range(SERIES // 2):
            labels = f'group="g{index % 5}",series="{index}"'
            tags = f"group=g{index % 5},series={index}"
            value = 50.0
            lines_lp = []
            for second in range(start_s, end_s + 1):
                if kind == "bench_gauge":
                    value = round(value + rng.random() - 0.5, 2)
                else:
                    value += rng.randint(0, 20)
                text = repr(value)
                handle = openmetrics(second)
                if second // BLOCK_S not in headed:
                    handle.write(f"# TYPE {kind} unknown\n")
                    headed.add(second // BLOCK_S)
                handle.write(f"{kind}{{{labels}}} {text} {second}\n")
                # bench.gauge and bench.requests_total: bench_gauge and bench_requests_total to PromQL.
                lines_lp.append(f"bench,{tags} {kind[len('bench_'):]}={text} {second}")
                if len(lines_lp) == 10_000:
                    line_batches("\n".join(lines_lp))
                    lines_lp = []
            if lines_lp:
                line_batches("\n".join(lines_lp))
    paths = []
    for handle in files.values():
        handle.write("# EOF\n")
        handle.close()
        paths.append(handle.name)
    return start_s, paths


def timed(url, headers, query, start, end, step, repeat):
    durations = []
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": step})
    for _ in range(repeat):
        request = urllib.request.Request(f"{url}/api/v1/query_range?{params}", headers=headers)
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read())
        durations.append(time.perf_counter() - began)
        if body["status"] != "success":
            return None, None, body["error"]
    durations.sort()
    points = sum(len(s["values"]) for s in body["data"]["result"])
    return durations[len(durations) // 2], durations[min(len(durations) - 1, int(len(durations) * 0.95))], points


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-query-")
    end_s = int(time.time()) // 60 * 60 - 120
    binary = os.environ.get("PULSEBOARD_BIN", ".build/release/pulseboard")
    server = Server(binary=binary, extra_args=["--no-host-metrics", "--log-level", "warning", "--compact-after", "1",
                                               "--retention-days", str(args.days + 2)]).start()
    prometheus = None
    try:
        access = server.login()
        status, created = server.request("POST", "/api/v1/tokens", {"name": "bench"}, token=access)
        token = created["token"]
        # An API token: the access token would expire while the data is converted.
        status, created = server.request("POST", "/api/v1/me/tokens", {"name": "bench"}, token=access)
        admin = created["token"]
        began = time.time()
        pool = concurrent.futures.ThreadPoolExecutor(4)
        pending = []

        def post(body):
            request = urllib.request.Request(server.url + "/write?db=bench&precision=s", data=body.encode(), method="POST",
                                             headers={"Authorization": "Token " + token})
            with urllib.request.urlopen(request, timeout=600) as response:
                assert response.status == 204

        def submit(body):
            pending.append(pool.submit(post, body))
            while len(pending) > 16:
                pending.pop(0).result()

        start_s, files = generate(args.days, end_s, folder, submit)
        for future in pending:
            future.result()
        print(f"generated and loaded into Pulseboard in {time.time() - began:.0f} s", flush=True)
        began = time.time()

        def blocks(path):
            subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", path, os.path.join(folder, "tsdb")],
                           check=True, stdout=subprocess.DEVNULL)
            os.unlink(path)

        list(concurrent.futures.ThreadPoolExecutor(2).map(blocks, files))
        print(f"promtool made Prometheus's blocks in {time.time() - began:.0f} s", flush=True)
        config = os.path.join(folder, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1m\n")
        port = free_port()
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder}/tsdb", f"--web.listen-address=127.0.0.1:{port}",
             f"--storage.tsdb.retention.time={args.days + 2}d"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        prometheus_url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(prometheus_url + "/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(10)  # let both settle (Pulseboard compacts, Prometheus loads its blocks)
        ranges = [("1 h", end_s - 3600, end_s, 4), (f"{args.days} d", start_s, end_s, max(1, args.days * 86_400 // 1000))]
        print(f"\n{SERIES} series, one sample a second over {args.days} days ({SERIES * args.days * 86_400:,} samples), "
              f"each query {args.repeat} times, one system after the other ({os.cpu_count()} cores)\n")
        print("| range, step | query | Pulseboard p50 | p95 | Prometheus 2.42 p50 | p95 | p95 × Prometheus | points answered |")
        print("|---|---|---|---|---|---|---|---|")
        for label, start, end, step in ranges:
            for query in QUERIES:
                ours = timed(server.url + "/prometheus", {"Authorization": "Bearer " + admin}, query, start, end, step, args.repeat)
                theirs = timed(prometheus_url, {}, query, start, end, step, args.repeat)
                if ours[0] is None or theirs[0] is None or ours[2] != theirs[2]:
                    print(f"| {label}, {step} s | `{query}` | {ours[2]} | | {theirs[2]} | | | |", flush=True)
                    continue
                print(f"| {label}, {step} s | `{query}` | {ours[0] * 1000:.0f} ms | {ours[1] * 1000:.0f} ms | {theirs[0] * 1000:.0f} ms | "
                      f"{theirs[1] * 1000:.0f} ms | {ours[1] / theirs[1]:.2f} | {ours[2]:,} |", flush=True)
    finally:
        server.stop()
        if prometheus:
            prometheus.terminate()
            prometheus.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(server.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
