"""Starts a built Pulseboard binary as a child process for the end-to-end checks."""
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "e2e-admin-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server on a free loopback port with its own data folder (kept across restarts)."""

    def __init__(self, binary=None, data_dir=None, extra_args=()):
        self.binary = binary or os.environ.get("PULSEBOARD_BIN", ".build/debug/pulseboard")
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="pulseboard-e2e-")
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.process = None
        self.log = open(os.path.join(self.data_dir, "server.log"), "ab")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, platform_port=False):
        """With `platform_port` the port is given as a hosting platform gives it: `PORT` only."""
        env = dict(os.environ)
        env.update({
            "PULSEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PULSEBOARD_BCRYPT_COST": "10",
            "PULSEBOARD_LOG_FORMAT": "json",
        })
        env.pop("PULSEBOARD_PORT", None)
        if platform_port:
            env["PORT"] = str(self.port)
        port = [] if platform_port else ["--port", str(self.port)]
        self.process = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data_dir, *port, *self.extra_args],
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.data_dir}/server.log")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy within 30 s")

    def kill(self):
        """kill -9: no chance to flush or finish anything."""
        self.process.kill()
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def request(self, method, path, body=None, token=None, headers=None, timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", "Bearer " + token)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def login(self):
        status, body = self.request("POST", "/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert status == 200, body
        return body["accessToken"]
