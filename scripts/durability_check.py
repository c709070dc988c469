"""Durability: every acknowledged point survives kill -9 and is stored exactly once.

Writers ingest batches without pause, each with its own Idempotency-Key, and retry a batch until it is
acknowledged (a crash may commit a batch without answering: the retry must not store it twice).
Meanwhile the server is killed with SIGKILL at random moments and restarted, and it compacts its
chunks every second (`--compact-after 1`), so kills also land in the middle of compactions. At
the end every acknowledged point must be in the history exactly once.
"""
import argparse
import random
import re
import sys
import threading
import time
import urllib.request

from postgres_server import Postgres
from pulseboard_process import Server

BATCH = 10


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL instead of SQLite")
    args = parser.parse_args()

    extra = ["--no-host-metrics", "--compact-after", "1"]
    postgres = None
    if args.postgres:
        postgres = Postgres().start()
        extra += ["--database-url", postgres.create_database("durability")]
    engine = "PostgreSQL" if args.postgres else "SQLite"
    server = Server(extra_args=extra).start()
    token = server.login()
    base_ms = int(time.time() * 1000) - 3_600_000
    # Values acknowledged per series; a series holds at most 500 batches, so that one raw history
    # query (10,000 points at most) reads it whole.
    acknowledged = {}
    done = threading.Event()

    def writer(w):
        b = 0
        while not done.is_set():
            series = f"durability.w{w}.s{b // 500}"
            points = [{"name": series, "value": b * BATCH + i,
                       "timestamp": iso(base_ms + (b * BATCH + i) * 10)} for i in range(BATCH)]
            while True:
                try:
                    status, _ = server.request("POST", "/api/v1/metrics", points, token=token,
                                               headers={"Idempotency-Key": f"w{w}-b{b}"}, timeout=5)
                    if status == 200:
                        acknowledged.setdefault(series, set()).update(p["value"] for p in points)
                        b += 1
                        break
                    if status not in (401, 503):
                        raise SystemExit(f"unexpected status {status}")
                except OSError:
                    pass  # the server is down: retry the same batch with the same key
                time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.writers)]
    for t in threads:
        t.start()
    for k in range(args.kills):
        time.sleep(random.uniform(0.3, 1.5))
        server.kill()
        print(f"kill -9 #{k + 1} after {sum(len(a) for a in list(acknowledged.values()))} acknowledged points", flush=True)
        server.start()
        token = server.login()
    time.sleep(0.5)
    done.set()
    for t in threads:
        t.join()

    failures = 0
    for series, expected in sorted(acknowledged.items()):
        status, history = server.request(
            "GET", f"/api/v1/metrics?name={series}&from={iso(base_ms - 1000)}&to={iso(base_ms + 3_600_000)}&maxPoints=10000",
            token=token)
        assert status == 200 and len(history["series"]) == 1 and not history["series"][0]["downsampled"], history
        values = [p["value"] for p in history["series"][0]["points"]]
        duplicates = len(values) - len(set(values))
        missing = expected - set(values)
        if duplicates or missing:
            failures += 1
            print(f"{series}: {len(missing)} acknowledged points missing, {duplicates} duplicates")
    total = sum(len(a) for a in acknowledged.values())
    # The compactor ran meanwhile: far fewer chunks than the batches that each made one.
    time.sleep(2)
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        chunks = int(float(re.search(r"^pulseboard_stored_chunks (\S+)", response.read().decode(), re.MULTILINE).group(1)))
    print(f"{chunks} chunks hold the {total // BATCH} acknowledged batches")
    if chunks * 2 > total // BATCH:
        failures += 1
        print("compaction did not run during the check")
    server.stop()
    if postgres:
        postgres.stop()
    if failures:
        print(f"1 failed: durability lost or duplicated acknowledged points ({engine})")
        return 1
    print(f"durability ({engine}): {total} acknowledged points across {args.kills} kill -9 restarts, all stored exactly once")
    print("1 passed, 0 failed")
    return 0


def iso(ms):
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


if __name__ == "__main__":
    sys.exit(main())
