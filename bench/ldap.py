#!/usr/bin/env python3
"""Directory read from a real slapd: 10,000 users and 1,000 groups (by default).

    python bench/ldap.py [--users 10000] [--groups 1000] [--page-size 500] [--runs 3]

Starts a throwaway slapd (scripts/slapdserver.py), loads the entries over LDAP (so the
memberof overlay sees them), then reads the directory the way `govern plan` does, several
times, and reports entries/s and how each read splits between the LDAP searches (ldap3's
round trips and BER decoding) and govern's own work (mapping, DN resolution, snapshot
checks), plus the OPA-side cost of the snapshot (building data.directory and its upload).
Figures are ratios within one run; nothing here is a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import slapdserver  # noqa: E402

from govern.engine.opa import OPAServer, find_opa  # noqa: E402
from govern.engine.spec import LDAPDirectoryConfig  # noqa: E402
from govern.identity.ldap import LDAPDirectory  # noqa: E402

import ldap3  # noqa: E402  (after govern.identity.ldap: its warning filter)

BASE = slapdserver.SUFFIX
DEPARTMENTS = ["Commercial", "Clinical", "Data", "Medical", "Marketing", "Finance", "HR", "IT"]
COUNTRIES = ["DE", "FR", "IT", "ES", "NL", "PL", "US", "GB", "CH", "JP", "BR", "IN"]


def load(url: str, users: int, groups: int, seed: int) -> float:
    rnd = random.Random(seed)
    conn = ldap3.Connection(url, slapdserver.ADMIN_DN, slapdserver.ADMIN_PW, auto_bind=True,
                            raise_exceptions=True)
    start = time.perf_counter()
    for ou in ("people", "groups"):
        conn.add(f"ou={ou},{BASE}", ["organizationalUnit"])
    for i in range(users):
        uid = f"u{i:05d}"
        conn.add(f"uid={uid},ou=people,{BASE}", ["inetOrgPerson", "extensibleObject"],
                 {"uid": uid, "cn": f"User {i}", "sn": uid, "mail": f"{uid}@example.com",
                  "departmentNumber": rnd.choice(DEPARTMENTS), "c": rnd.choice(COUNTRIES),
                  "employeeType": "contractor" if rnd.random() < 0.1 else "employee"})
    members: dict[int, set[str]] = {g: set() for g in range(groups)}
    for i in range(users):
        for g in rnd.sample(range(groups), rnd.randint(1, 3)):
            members[g].add(f"uid=u{i:05d},ou=people,{BASE}")
    for g in range(groups):  # a forest: every group but the roots nests in an earlier one
        parent = (g - 1) // 4 if g else None
        if parent is not None and g % 10:
            members[parent].add(f"cn=g{g:04d},ou=groups,{BASE}")
    for g in sorted(range(groups), reverse=True):  # children first: they must exist
        conn.add(f"cn=g{g:04d},ou=groups,{BASE}", ["groupOfNames"],
                 {"cn": f"g{g:04d}", "member": sorted(members[g]) or [f"cn=nobody,{BASE}"]})
    conn.unbind()
    return time.perf_counter() - start


class TimedLDAP(LDAPDirectory):
    """Accumulates the time spent inside ldap3's search calls (network + decoding)."""

    ldap_seconds = 0.0

    def search(self, conn, base, search_filter, attributes):
        inner = super().search(conn, base, search_filter, attributes)
        while True:
            start = time.perf_counter()
            try:
                entry = next(inner)
            except StopIteration:
                self.ldap_seconds += time.perf_counter() - start
                return
            self.ldap_seconds += time.perf_counter() - start
            yield entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--groups", type=int, default=1_000)
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="govern-bench-slapd-"))
    url = slapdserver.start(folder)
    try:
        load_s = load(url, args.users, args.groups, args.seed)
        entries = args.users + args.groups
        config = LDAPDirectoryConfig.model_validate({
            "source": "ldap", "url": url, "bind_dn": slapdserver.READER_DN,
            "password_file": str(folder / "pw"), "page_size": args.page_size,
            "users": {"bases": [f"ou=people,{BASE}"], "attributes": {
                "department": "departmentNumber", "country": "c",
                "employment_type": "employeeType"}},
            "groups": {"bases": [f"ou=groups,{BASE}"]}})
        (folder / "pw").write_text(slapdserver.READER_PW)
        reads = []
        for _ in range(args.runs):
            source = TimedLDAP(config)
            start = time.perf_counter()
            snapshot = source.snapshot()
            total = time.perf_counter() - start
            reads.append({"total_s": total, "ldap_s": source.ldap_seconds,
                          "govern_s": total - source.ldap_seconds,
                          "round_trips": source.round_trips})
        start = time.perf_counter()
        data = snapshot.to_data()
        fingerprint = snapshot.fingerprint()
        to_data_s = time.perf_counter() - start
        with OPAServer(find_opa()) as server, server.client() as client:
            start = time.perf_counter()
            client.put_data("directory", data)
            upload_s = time.perf_counter() - start
        med = {k: statistics.median(r[k] for r in reads) for k in ("total_s", "ldap_s",
                                                                     "govern_s")}
        result = {
            "users": len(snapshot.users), "groups": len(snapshot.groups),
            "memberships": sum(len(g.members) + len(g.subgroups)
                               for g in snapshot.groups.values()),
            "page_size": args.page_size, "runs": reads, "load_s": round(load_s, 2),
            "load_entries_per_s": round(entries / load_s),
            "read_median_s": round(med["total_s"], 3),
            "read_entries_per_s": round(entries / med["total_s"]),
            "ldap_share": round(med["ldap_s"] / med["total_s"], 3),
            "govern_share": round(med["govern_s"] / med["total_s"], 3),
            "search_round_trips": reads[0]["round_trips"],
            "snapshot_to_data_and_fingerprint_s": round(to_data_s, 3),
            "opa_directory_upload_s": round(upload_s, 3),
            "fingerprint": fingerprint[:16],
        }
    finally:
        slapdserver.stop(folder)
    print(f"directory: {result['users']} users, {result['groups']} groups, "
          f"{result['memberships']} membership edges (page size {args.page_size})")
    print(f"load over LDAP: {result['load_s']} s ({result['load_entries_per_s']} entries/s)")
    print(f"read (median of {args.runs}): {result['read_median_s']} s = "
          f"{result['read_entries_per_s']} entries/s, {result['search_round_trips']} searches")
    print(f"  split: LDAP (ldap3 searches + decoding) {result['ldap_share']:.0%}, "
          f"govern (mapping, DNs, checks) {result['govern_share']:.0%}")
    print(f"  then: data.directory + fingerprint {result['snapshot_to_data_and_fingerprint_s']} s, "
          f"OPA upload {result['opa_directory_upload_s']} s")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"ldap-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
