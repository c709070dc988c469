"""Learning-event ingest side by side: Pulseboard on SQLite, Pulseboard on PostgreSQL, and the seed
documents' own stack (`seed_stack.py`: FastAPI + pydantic + asyncpg COPY into PostgreSQL, two
uvicorn workers), in the same run, each on loopback with a fresh database, driven by the same
external load generator (wrk, its own process): --connections connections post batches of --batch
extension-shaped events (cell executions, saves, help requests of --students students), every
event with a new eventId. An answer means the events are committed (fsync on, as shipped).
With --varied-sizes the batches hold 1 to 2 × --batch − 1 events in turn (--batch on average; the
counts below take the average), as the batches of real clients vary.

Printed per system: events/s acknowledged, the ratio to the seed stack, request p50/p99; for
Pulseboard also how long after the load started every event was applied to the class picture
(students, sessions, notebooks, positions, cell executions, help requests) and the rate that
makes, and the server's peak resident memory. The seed stack applies nothing (its seeds queue
that for a worker).

    python3 scripts/bench_events.py [--seconds 10] [--connections 32] [--batch 100] [--students 200] [--varied-sizes]
                                    [--only pulseboard pulseboard-postgres seed-stack]

Needs `wrk` and PostgreSQL (Debian packages, installed when missing and run as root), fastapi,
uvicorn and asyncpg (PyPI, installed when missing) and a release build (`swift build -c release`,
or PULSEBOARD_BIN)."""
import argparse
import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_peers import THREAD_IDS, wait_until, wrk_summary  # noqa: E402
from postgres_server import Postgres  # noqa: E402
from pulseboard_process import Server, free_port  # noqa: E402

WRK_THREADS = 2

# Each request: BATCH events of STUDENTS students, ids unique across threads and requests, stamped
# with the time they are sent. Mostly cell executions (one in ten failing), some saves and help.
WRK_SCRIPT = THREAD_IDS + r"""
local counter = 0
function init(args)
  id = tonumber(wrk.thread:get("id")) or 0
end
function request()
  counter = counter + 1
  local now = os.date("!%Y-%m-%dT%H:%M:%S.000Z")
  local parts = {}
  -- VARIED: sizes cycle through 1 … 2 × BATCH − 1 (so BATCH on average), as real batches vary.
  local size = VARIED and counter % (2 * BATCH - 1) + 1 or BATCH
  for i = 0, size - 1 do
    local n = (counter * BATCH + i) * THREADS + id
    local student = n % STUDENTS
    local kind = n % 20
    local fields = '"eventId":"e-' .. id .. '-' .. counter .. '-' .. i .. '","eventTime":"' .. now ..
      '","emailAddress":"s' .. student .. '@example.com","userName":"Student ' .. student ..
      '","teamName":"team-' .. (student % 10) .. '","sessionId":"session-' .. student ..
      '","notebookPath":"week1/lab' .. (n % 3) .. '.ipynb"'
    if kind == 0 then
      parts[#parts + 1] = '{"eventType":"help",' .. fields .. ',"cellIndex":' .. (n % 30) .. '}'
    elseif kind == 1 then
      parts[#parts + 1] = '{"eventType":"notebook_saved",' .. fields .. '}'
    else
      local failed = (kind == 2) and "true" or "false"
      parts[#parts + 1] = '{"eventType":"cell_executed",' .. fields .. ',"cellId":"c' .. (n % 30) .. '","cellIndex":' .. (n % 30) ..
        ',"cellType":"code","code":"print(' .. n .. ')","executionCount":' .. (counter % 1000) ..
        ',"hasError":' .. failed .. ',"executionDurationMs":12.5}'
    end
  end
  return wrk.format("POST", PATH, {["Content-Type"] = "application/json"}, "[" .. table.concat(parts, ",") .. "]")
end
"""


def install_missing():
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "wrk"], check=True, stdout=subprocess.DEVNULL)
    missing = [name for name in ("fastapi", "uvicorn", "asyncpg") if importlib.util.find_spec(name) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *missing], check=True)


def run_wrk(url, path, args):
    script = (f"BATCH = {args.batch}\nVARIED = {'true' if args.varied_sizes else 'false'}\nSTUDENTS = {args.students}\nTHREADS = {WRK_THREADS}\n"
              f"PATH = \"{path}\"\n" + WRK_SCRIPT)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    output = subprocess.run(["wrk", "-t", str(WRK_THREADS), "-c", str(args.connections), "-d", f"{args.seconds}s", "--latency",
                             "-s", file.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(file.name)
    summary = wrk_summary(output)
    ok = summary["requests"] - summary["failed"]
    return {"events": ok * args.batch, "rate": ok * args.batch / args.seconds, "failed": summary["failed"],
            "socket_errors": summary["socket_errors"], "p50": summary["p50"], "p99": summary["p99"]}


def wait_applied(unapplied, started, limit=600):
    """Seconds from `started` until `unapplied()` answers 0 (None past `limit`)."""
    while time.time() - started < limit:
        if unapplied() == 0:
            return time.time() - started
        time.sleep(0.5)  # the count is a query on the server under test: not too often
    return None


def pulseboard(args, postgres=None):
    binary = os.environ.get("PULSEBOARD_BIN", ".build/release/pulseboard")
    extra = ["--database-url", postgres.url()] if postgres else []
    server = Server(binary=binary, extra_args=["--no-host-metrics", "--log-level", "warning", *extra]).start()
    try:
        admin = server.login()
        status, created = server.request("POST", "/api/v1/classes", {"name": "bench", "code": "bench"}, token=admin)
        assert status == 201, created
        started = time.time()
        result = run_wrk(server.url, "/api/v1/events?token=" + created["ingestToken"], args)
        query = "SELECT COUNT(*) FROM events_unapplied"
        if postgres:
            def unapplied():
                return int(subprocess.run(["psql", postgres.url(), "-Atc", query], capture_output=True, text=True, check=True).stdout)
        else:
            database = sqlite3.connect(os.path.join(server.data_dir, "pulseboard.sqlite"), timeout=30)

            def unapplied():
                return database.execute(query).fetchone()[0]
        result["applied_after"] = wait_applied(unapplied, started)
        with open(f"/proc/{server.process.pid}/status") as status:
            result["peak_rss_mb"] = next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM"))
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
    return result


def seed_stack(args, postgres):
    port = free_port()
    environment = dict(os.environ, DATABASE_URL=postgres.url())
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "seed_stack:app", "--app-dir", os.path.dirname(os.path.abspath(__file__)),
                                "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                               env=environment)
    try:
        wait_until(f"http://127.0.0.1:{port}/docs")
        return run_wrk(f"http://127.0.0.1:{port}", "/api/v1/events", args)
    finally:
        process.terminate()
        process.wait(timeout=30)


def with_postgres(run):
    def wrapped(args):
        postgres = Postgres().start()
        try:
            return run(args, postgres)
        finally:
            postgres.stop()
            shutil.rmtree(postgres.dir, ignore_errors=True)
    return wrapped


SYSTEMS = {
    "pulseboard": ("Pulseboard (SQLite)", pulseboard),
    "pulseboard-postgres": ("Pulseboard (PostgreSQL)", with_postgres(pulseboard)),
    "seed-stack": ("seed stack (FastAPI + asyncpg COPY, PostgreSQL)", with_postgres(seed_stack)),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--varied-sizes", action="store_true", help="batch sizes from 1 to 2 × --batch − 1 instead of all --batch")
    parser.add_argument("--only", nargs="*", default=list(SYSTEMS), help="systems to run, from " + ", ".join(SYSTEMS))
    args = parser.parse_args()
    install_missing()
    results = {key: (SYSTEMS[key][0], SYSTEMS[key][1](args)) for key in args.only}
    sizes = f"batches of 1 to {2 * args.batch - 1} events ({args.batch} on average)" if args.varied_sizes else f"batches of {args.batch} events"
    print(f"\nLearning-event ingest, {args.connections} connections, {sizes} of {args.students} students, "
          f"{args.seconds} s each, one after the other on this machine ({os.cpu_count()} cores)\n")
    print("| system | events/s (acknowledged) | × seed stack | request p50 | p99 | failed requests | socket errors | all applied after | applied/s "
          "| server peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    reference = results.get("seed-stack", (None, None))[1]
    for name, result in results.values():
        ratio = f"{result['rate'] / reference['rate']:.2f}" if reference and reference["rate"] else "–"
        applied = result.get("applied_after")
        after = "–" if "applied_after" not in result else (f"{applied:.1f} s" if applied else "not within 600 s")
        rate = f"{int(result['events'] / applied):,}" if applied else "–"
        print(f"| {name} | {int(result['rate']):,} | {ratio} | {result['p50']} | {result['p99']} | {result['failed']} | "
              f"{result['socket_errors'] or 'none'} | {after} | {rate} | {result.get('peak_rss_mb', '–')} {'MB' if 'peak_rss_mb' in result else ''} |")


if __name__ == "__main__":
    main()
