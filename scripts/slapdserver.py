#!/usr/bin/env python3
"""A throwaway OpenLDAP slapd (Debian's package) on a free loopback port, with the memberof
overlay, an mdb database in a temp folder, and three accounts:

    cn=admin,dc=example,dc=com    rootdn (ignores size limits)
    cn=reader,dc=example,dc=com   an ordinary reader, no size limit
    cn=limited,dc=example,dc=com  an ordinary reader limited to 50 entries per search

    python scripts/slapdserver.py start DIR   # prints the URL; runs until `stop`
    python scripts/slapdserver.py stop DIR

Used by the tests and bench/. Entries are added over LDAP (not slapadd), so memberof sees them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from testcerts import make_certificates

SLAPD = os.environ.get("GOVERN_SLAPD", "/usr/sbin/slapd")
SUFFIX = "dc=example,dc=com"
ADMIN_DN, ADMIN_PW = f"cn=admin,{SUFFIX}", "admin-secret"
READER_DN, READER_PW = f"cn=reader,{SUFFIX}", "reader-secret"
LIMITED_DN, LIMITED_PW = f"cn=limited,{SUFFIX}", "limited-secret"

CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
sizelimit 500
database mdb
maxsize 1073741824
suffix "{suffix}"
rootdn "{admin}"
rootpw {admin_pw}
directory {d}/data
dbnosync
index objectClass eq
index uid,cn,member,memberUid eq
overlay memberof
limits dn.exact="{reader}" size=unlimited
limits dn.exact="{limited}" size=50
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TLS_CONF = """\
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
"""


def url(folder: Path) -> str:
    return f"ldap://127.0.0.1:{(folder / 'port').read_text().strip()}"


def tls_url(folder: Path) -> str:
    return f"ldaps://127.0.0.1:{(folder / 'tls-port').read_text().strip()}"


def start(folder: Path, tls: bool = False) -> str:
    """Start slapd; with ``tls``, also ldaps:// on a second port and StartTLS, with a
    certificate from ``folder/ca.pem``."""
    folder = folder.resolve()
    if not Path(SLAPD).exists():
        raise SystemExit(f"slapd not found at {SLAPD}: run `make tools`")
    (folder / "data").mkdir(parents=True, exist_ok=True)
    conf = CONF.format(d=folder, suffix=SUFFIX, admin=ADMIN_DN, admin_pw=ADMIN_PW,
                       reader=READER_DN, limited=LIMITED_DN)
    if tls:
        make_certificates(folder, "govern test LDAP CA")
        conf = TLS_CONF.format(d=folder) + conf
        (folder / "tls-port").write_text(str(_free_port()))
    (folder / "slapd.conf").write_text(conf)
    (folder / "port").write_text(str(_free_port()))
    restart(folder)
    _bootstrap(url(folder))
    return url(folder)


def restart(folder: Path) -> None:
    """Start slapd again on its folder's config, port and data (after `stop`)."""
    folder = folder.resolve()
    port = int((folder / "port").read_text())
    listen = f"ldap://127.0.0.1:{port}/"
    if (folder / "tls-port").exists():
        listen += f" ldaps://127.0.0.1:{(folder / 'tls-port').read_text().strip()}/"
    with open(folder / "slapd.log", "ab") as log:
        subprocess.run([SLAPD, "-f", str(folder / "slapd.conf"), "-h", listen],
                       check=True, stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    else:
        raise SystemExit(f"slapd did not start; see {folder / 'slapd.log'}")


def _bootstrap(server_url: str) -> None:
    import ldap3

    conn = ldap3.Connection(server_url, ADMIN_DN, ADMIN_PW, auto_bind=True)
    conn.add(SUFFIX, ["top", "dcObject", "organization"], {"o": "Example", "dc": "example"})
    for dn, pw in ((READER_DN, READER_PW), (LIMITED_DN, LIMITED_PW)):
        conn.add(dn, ["simpleSecurityObject", "organizationalRole"], {"userPassword": pw})
    conn.unbind()


def pid(folder: Path) -> int | None:
    path = folder.resolve() / "slapd.pid"
    return int(path.read_text().strip()) if path.exists() else None


def stop(folder: Path) -> None:
    found = pid(folder)
    if found is None:
        return
    try:
        os.kill(found, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(found, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(found, signal.SIGKILL)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "start":
        print(start(Path(sys.argv[2])))
    else:
        stop(Path(sys.argv[2]))
