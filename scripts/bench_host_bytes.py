"""Bytes per point of the host series after compaction: runs Pulseboard (release build) with its
host collector at the default interval for --seconds, compacting chunks whose newest point is
five seconds old, then prints each host series' stored points and chunk bytes from
`GET /api/v1/series`, and the SQLite file's size per point.

    python3 scripts/bench_host_bytes.py [--seconds 300]"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from pulseboard_process import Server  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=300)
    args = parser.parse_args()
    server = Server(binary=os.environ.get("PULSEBOARD_BIN", ".build/release/pulseboard"),
                    extra_args=["--log-level", "warning", "--compact-after", "5"]).start()
    try:
        time.sleep(args.seconds + 15)  # the last points' chunks are compacted too
        status, body = server.request("GET", "/api/v1/series", token=server.login())
        assert status == 200, body
    finally:
        server.stop()
    host = [s for s in body["series"] if s["name"].startswith("host.")]
    points = sum(s["storedPoints"] for s in host)
    chunk_bytes = sum(s["storedBytes"] for s in host)
    print(f"| series | points | chunk bytes | bytes per point |\n|---|---|---|---|")
    for s in host:
        print(f"| {s['name']} {s['tags'] or ''} | {s['storedPoints']} | {s['storedBytes']} | {s['storedBytes'] / max(1, s['storedPoints']):.2f} |")
    print(f"| all {len(host)} host series | {points} | {chunk_bytes} | {chunk_bytes / max(1, points):.2f} |")
    total = sum(s["storedPoints"] for s in body["series"])
    database = sum(os.path.getsize(os.path.join(server.data_dir, name)) for name in os.listdir(server.data_dir)
                   if name.startswith("pulseboard.sqlite"))
    print(f"\nSQLite file: {database} bytes for {total} points of every series ({database / max(1, total):.1f} bytes a point, "
          "pages, indexes, rollups and the rest of the schema included)")


if __name__ == "__main__":
    sys.exit(main())
