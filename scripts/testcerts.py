"""A CA of our own and a server certificate for 127.0.0.1 signed by it (openssl), for the
TLS tests of OPA and slapd: ``make_certificates(folder)`` writes ca.pem, server.pem and
server.key there."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_certificates(folder: Path, name: str = "govern test CA") -> None:
    def run(*args: str) -> None:
        subprocess.run(args, cwd=folder, check=True, capture_output=True)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", f"/CN={name}")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
