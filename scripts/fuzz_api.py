"""Fuzzes the live server's API from its own OpenAPI document with schemathesis, as an admin.
Fails on any 5xx and on any response (status, content type, headers, body) that the document
does not describe."""
import os
import subprocess
import sys

from pulseboard_process import Server

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])


def main():
    server = Server().start()
    try:
        token = server.login()
        command = [
            "schemathesis", "run", server.url + "/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--checks", CHECKS,
            "--max-examples", sys.argv[1] if len(sys.argv) > 1 else "40",
            # One worker: schemathesis's coverage phase has crashed inside CPython (an AST error)
            # when two threads generated at once; that is a crash of the tool, not a finding.
            "--workers", "1",
            "--seed", "20261122",
        ]
        # fuzz_hooks.py generates the remote-write bodies (snappy + protobuf) schemathesis cannot.
        scripts = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ, SCHEMATHESIS_HOOKS="fuzz_hooks",
                   PYTHONPATH=os.pathsep.join(filter(None, [scripts, os.environ.get("PYTHONPATH")])))
        result = subprocess.run(command, env=env)
        print("1 passed, 0 failed" if result.returncode == 0 else "0 passed, 1 failed")
        return result.returncode
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
