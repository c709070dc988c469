"""What an operator runs, checked with the built binary: the platform's PORT, the Docker image's
health check (the exact command of the Dockerfile's HEALTHCHECK), and `pulseboard backup` taken
while the server ingests, restored into a second server that answers the same history."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

from pulseboard_process import Server


def healthcheck_command(binary):
    """The Dockerfile's HEALTHCHECK, with the image's binary path replaced by the built one."""
    with open(os.path.join(os.path.dirname(__file__), "..", "Dockerfile")) as dockerfile:
        line = next(line for line in dockerfile if line.startswith("HEALTHCHECK"))
    command = json.loads(re.search(r"CMD (\[.*\])", line).group(1))
    assert command[0] == "/app/pulseboard", command
    return [binary] + command[1:]


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def history(server, token):
    status, body = server.request("GET", "/api/v1/metrics?name=ops.check&from=2020-01-01T00:00:00Z&maxPoints=5000", token=token)
    assert status == 200, body
    return sorted((point["timestamp"], point["value"]) for series in body["series"] for point in series["points"])


def write_more(server, token):
    for n in range(20):
        batch = [{"name": "ops.other", "value": n, "timestamp": iso(1_700_000_000_000 + n * 1000 + i)} for i in range(1000)]
        server.request("POST", "/api/v1/metrics", batch, token=token)


def main():
    server = Server(extra_args=["--no-host-metrics"])
    server.start(platform_port=True)
    restored = None
    try:
        check = healthcheck_command(server.binary)
        env = dict(os.environ, PORT=str(server.port))
        env.pop("PULSEBOARD_PORT", None)
        assert subprocess.run(check, env=env, capture_output=True).returncode == 0, "health check of a healthy server failed"
        print(f"operations: the server listens on the platform's PORT; the Dockerfile's health check ({' '.join(check[1:])}) passes")

        token = server.login()
        start = int(time.time() * 1000) - 60_000
        points = [{"name": "ops.check", "value": i * 0.5, "timestamp": iso(start + i)} for i in range(2000)]
        status, body = server.request("POST", "/api/v1/metrics", points, token=token)
        assert status == 200, body
        # The backup is taken while other batches are being written.
        writer = threading.Thread(target=write_more, args=(server, token))
        writer.start()
        copy = os.path.join(tempfile.mkdtemp(prefix="pulseboard-backup-"), "pulseboard.sqlite")
        result = subprocess.run([server.binary, "backup", "--data-dir", server.data_dir, copy], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        writer.join()
        again = subprocess.run([server.binary, "backup", "--data-dir", server.data_dir, copy], capture_output=True, text=True)
        assert again.returncode != 0 and "new file" in again.stderr, "a backup overwrote an existing file"

        restored = Server(data_dir=os.path.dirname(copy), extra_args=["--no-host-metrics"]).start()
        assert history(restored, restored.login()) == history(server, token) == [(iso(start + i), i * 0.5) for i in range(2000)]
        print(f"operations: a backup taken during ingest restores into a server that answers the same {len(points)} points")
    finally:
        server.stop()
        if restored:
            restored.stop()
    down = subprocess.run(check, env=env, capture_output=True)
    assert down.returncode == 1, f"health check of a stopped server answered {down.returncode}"
    print("operations: the health check fails when the server is down")
    shutil.rmtree(server.data_dir, ignore_errors=True)
    print("3 passed, 0 failed")


if __name__ == "__main__":
    main()
