"""Classes across instances: two Pulseboard instances on one PostgreSQL; simulated students post
their cell executions to instance A, one event per request as the JupyterLab extension sends
them, while each class's instructor page is open on instance B (a WebSocket following
`class:<id>`). Measured: the time from an event (its eventTime, set when it is sent) to the
student's card showing it on B, which crosses A's ingest and apply, the relay log and B's card
read.

    python3 scripts/bench_class_instances.py [--classes 20] [--students 200] [--interval 10] [--seconds 30]

Every student acts every --interval seconds (±50 %), so the load is classes × students /
interval events per second. Needs PostgreSQL (Debian), websocket-client (PyPI) and a release build
(`swift build -c release`, or PULSEBOARD_BIN)."""
import argparse
import http.client
import json
import os
import random
import shutil
import sys
import threading
import time
from datetime import datetime, timezone

import websocket

sys.path.insert(0, os.path.dirname(__file__))
from postgres_server import Postgres  # noqa: E402
from pulseboard_process import Server  # noqa: E402

SENDER_THREADS = 40


def iso(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(seconds * 1000) % 1000:03d}Z"


def parse_iso(text):
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def follow(server, token, class_id, samples, ready, stop):
    """The instructor's page on `server`: follows class:<id>, records each card's delay."""
    socket = websocket.create_connection(server.url.replace("http", "ws") + "/ws", timeout=60)
    socket.send(json.dumps({"op": "auth", "token": token}))
    socket.send(json.dumps({"op": "subscribe", "channel": f"class:{class_id}"}))
    socket.settimeout(1)
    while not stop.is_set():
        try:
            message = json.loads(socket.recv())
        except websocket.WebSocketTimeoutException:
            continue
        if message.get("type") == "subscribed":
            ready.release()
        student = (message.get("data") or {}).get("student") if isinstance(message.get("data"), dict) else None
        if student and student.get("lastActivity"):
            samples.append(time.time() - parse_iso(student["lastActivity"]))
    socket.close()


def send(server, tokens, students, interval, deadline, sent, errors):
    """Students of several classes, each posting one event per action to `server`."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    schedule = sorted((time.time() + random.uniform(0, interval), class_index, student) for class_index, student in students)
    count = 0
    while schedule and time.time() < deadline:
        due, class_index, student = schedule.pop(0)
        time.sleep(max(0, due - time.time()))
        now = time.time()
        email = f"s{student}-c{class_index}@example.com"
        event = {"eventId": f"e-{class_index}-{student}-{count}", "eventType": "cell_executed", "eventTime": iso(now),
                 "emailAddress": email, "userName": f"Student {student}", "teamName": f"team-{student % 10}",
                 "sessionId": f"session-{class_index}-{student}", "notebookPath": "week1/lab.ipynb",
                 "cellId": f"c{count % 30}", "cellIndex": count % 30, "cellType": "code", "code": f"print({count})",
                 "executionCount": count, "hasError": count % 10 == 0, "executionDurationMs": 12.5}
        count += 1
        try:
            connection.request("POST", "/api/v1/events?token=" + tokens[class_index], json.dumps([event]),
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                sent.append(time.time() - now)
            else:
                errors.append(response.status)
        except (OSError, http.client.HTTPException) as error:
            errors.append(str(error))
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        schedule.append((due + interval * random.uniform(0.5, 1.5), class_index, student))
        schedule.sort()
    connection.close()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    binary = os.environ.get("PULSEBOARD_BIN", ".build/release/pulseboard")
    postgres = Postgres().start()
    servers = []
    try:
        common = ["--database-url", postgres.url(), "--no-host-metrics", "--log-level", "warning"]
        a = Server(binary=binary, extra_args=common).start()
        servers.append(a)
        b = Server(binary=binary, extra_args=common).start()
        servers.append(b)
        admin_a, admin_b = a.login(), b.login()
        classes = []
        for index in range(args.classes):
            status, created = a.request("POST", "/api/v1/classes", {"name": f"class {index}", "code": f"c{index}"}, token=admin_a)
            assert status == 201, created
            classes.append(created)
        samples, ready, stop = [], threading.Semaphore(0), threading.Event()
        followers = [threading.Thread(target=follow, args=(b, admin_b, course["id"], samples, ready, stop), daemon=True) for course in classes]
        for thread in followers:
            thread.start()
        for _ in classes:
            assert ready.acquire(timeout=30), "a class page did not subscribe"
        tokens = [course["ingestToken"] for course in classes]
        everyone = [(c, s) for c in range(args.classes) for s in range(args.students)]
        sent, errors = [], []
        deadline = time.time() + args.seconds
        senders = [threading.Thread(target=send, args=(a, tokens, everyone[i::SENDER_THREADS], args.interval, deadline, sent, errors))
                   for i in range(SENDER_THREADS)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        time.sleep(3)  # the last cards
        stop.set()
        for thread in followers:
            thread.join(timeout=5)
        # The first interval is the ramp-up (every student's first event, the class pages' first cards).
        print(f"\n{args.classes} classes × {args.students} students, one event per student every {args.interval:g} s (±50 %), "
              f"{args.seconds:g} s; events posted to instance A, the class pages open on instance B")
        print("\n| events posted | events/s | refused or failed | answer p50 | p99 | cards on B | event → card p50 | p95 | p99 | max |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {len(sent):,} | {len(sent) / args.seconds:,.0f} | {len(errors)} | {percentile(sent, 0.5) * 1000:.0f} ms | {percentile(sent, 0.99) * 1000:.0f} ms "
              f"| {len(samples):,} | {percentile(samples, 0.5) * 1000:.0f} ms "
              f"| {percentile(samples, 0.95) * 1000:.0f} ms | {percentile(samples, 0.99) * 1000:.0f} ms | {max(samples, default=0) * 1000:.0f} ms |")
        if errors:
            print("first errors:", errors[:5])
    finally:
        for server in servers:
            server.stop()
            shutil.rmtree(server.data_dir, ignore_errors=True)
        postgres.stop()
        shutil.rmtree(postgres.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
