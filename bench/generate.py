#!/usr/bin/env python3
"""A synthetic data mesh for the benchmark: ``govern validate`` passes on it.

    python bench/generate.py OUT_DIR --products N --users M --groups K [--domains D] [--seed S]

writes a complete mesh into OUT_DIR (which must not exist or be empty):

* ``govern.yaml``  one PostgreSQL target ``warehouse`` (``dsn_env: GOVERN_WAREHOUSE_DSN``,
  ``create_login_roles: true``), one team group per domain, ``max_revoke_fraction: 1.0``;
* ``directory.yaml``  M users (department among 8, country among 12 of which 8 in the EU,
  employment_type employee/contractor about 90/10), K groups forming a forest of depth at
  most 3 (each domain's team group is a root), each user a direct member of 1–3 groups;
* ``approvals.yaml``  approved requests (and a few expired and pending ones, which the engine
  filters out);
* ``products/<domain>/<product>/{product.yaml,policy.rego}``  1–2 ports per product, 1–3
  datasets per port, PII columns on some ports; policies that grant through group
  membership (``lib.members``), an attribute rule (``lib.users_where`` + ``lib.attr(...) in
  lib.eu_countries``) and approvals (``lib.approved``), about 1–5 % of the users per product;
* ``seed.sql``  every port schema and table (empty).

The guardrails hold by construction: open products are at most internal; PII ports and
secret products grant only to members of the domain's team group, or by approval; an input
classified above its consumer carries an exception.

Same arguments and seed, same bytes. ``generate()`` is the same thing as a function; it
returns a summary which includes the access the policies must yield, computed here
independently of OPA (``expected_access``), so that the benchmark can check what it timed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml when available: the big directory file is written much faster
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]

EU = ["DE", "FR", "IT", "ES", "NL", "PL", "SE", "IE"]
NON_EU = ["US", "GB", "CH", "JP"]
COUNTRIES = EU + NON_EU
COUNTRY_WEIGHTS = [14, 10, 7, 6, 5, 4, 3, 2, 25, 12, 7, 5]  # EU about 51 %
DEPARTMENTS = ["Commercial", "Research", "Manufacturing", "Clinical", "Data", "Medical",
               "Finance", "Legal"]
DEPARTMENT_WEIGHTS = [20, 18, 15, 12, 11, 10, 8, 6]
FIRST = ["anna", "ben", "carla", "david", "elena", "felix", "greta", "hugo", "ines", "jonas",
         "karin", "lars", "maria", "nils", "olga", "paul", "rosa", "sven", "tina", "ugo",
         "vera", "walter", "xenia", "yusuf", "zoe", "amir", "bea", "chen", "dora", "emil"]
LAST = ["martin", "smith", "dubois", "miller", "schulz", "moreau", "weber", "fischer", "rossi",
        "garcia", "novak", "jansen", "berg", "kowalski", "larsen", "silva", "murphy", "tanaka",
        "keller", "bauer", "costa", "meyer", "lopez", "nilsson", "wagner", "dupont", "ricci"]
DOMAIN_WORDS = ["sales", "finance", "hr", "clinical", "research", "supply", "marketing",
                "manufacturing", "quality", "regulatory", "safety", "medical", "commercial",
                "digital", "procurement", "logistics", "legal", "it", "patients", "hcp",
                "pricing", "market_access", "rnd", "pharmacovig"]
FUNCTIONS = ["analysts", "engineers", "stewards", "scientists", "ops", "leads", "admins",
             "reviewers"]
TOPICS = ["analytics", "ai-guild", "data-quality", "reporting", "platform", "security",
          "finance-partners", "insights", "bi-champions", "ml-ops", "governance", "leadership"]
NOUNS = ["orders", "customers", "accounts", "shipments", "invoices", "visits", "samples",
         "batches", "trials", "events", "forecasts", "prices", "contracts", "claims", "sites",
         "devices", "campaigns", "leads", "stock", "suppliers", "audits", "deviations",
         "sessions", "payments", "returns", "budgets", "kpis", "cases", "studies", "assets"]
PORT_NAMES = ["curated", "reporting", "raw", "features", "events", "snapshots", "extract"]
DATASET_NAMES = ["facts", "details", "history", "daily", "weekly", "monthly", "current",
                 "lookup", "summary", "items"]
COLUMNS = [("country", "text"), ("region", "text"), ("status", "text"), ("amount", "numeric"),
           ("quantity", "integer"), ("score", "numeric"), ("is_active", "boolean"),
           ("created_at", "timestamptz"), ("updated_at", "timestamptz"), ("day", "date"),
           ("category", "text"), ("channel", "text")]
PII_COLUMNS = [("full_name", "text"), ("email", "text"), ("phone", "text"),
               ("birth_date", "date"), ("address", "text"), ("national_id", "text")]
CLASSIFICATIONS = ["public", "internal", "confidential", "secret"]
CLASSIFICATION_WEIGHTS = [15, 40, 30, 15]
RANK = {c: i for i, c in enumerate(CLASSIFICATIONS)}
ACTIVE_EXPIRY = "2099-12-31"
EXPIRED = "2020-01-31"


@dataclass
class Group:
    name: str
    depth: int  # 1 = a root
    domain: str | None  # the domain whose team subtree holds it, if any
    parent: str | None
    members: list[str] = field(default_factory=list)
    subgroups: list[str] = field(default_factory=list)


@dataclass
class Rule:
    """One rule of a policy, kept both as Rego and as data for the expected access."""

    kind: str  # members | attribute | approved
    port: str
    access: str
    group: str | None = None
    department: str | None = None
    team: str | None = None  # attribute rule on a restricted port: also in the team group


def default_domains(products: int) -> int:
    return max(2, min(50, products // 20))


def generate(out: Path, products: int, users: int, groups: int, domains: int | None = None,
             seed: int = 0, freshness: bool = False) -> dict[str, Any]:
    """Write the mesh into ``out``; return a summary (sizes and the expected access).
    ``freshness``: each dataset with an ``updated_at`` or ``created_at`` column names it as
    ``freshness_column`` (for the fitness benchmark); nothing else changes, same draws."""
    out = Path(out)
    domains = default_domains(products) if domains is None else domains
    if products < 1 or users < 1 or domains < 1:
        raise ValueError("products, users and domains must be at least 1")
    if groups < domains:
        raise ValueError(f"need at least one group per domain ({domains}), got {groups}")
    if domains > products:
        raise ValueError(f"more domains ({domains}) than products ({products})")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty")
    rng = random.Random(seed)

    domain_names = _domain_names(domains)
    user_ids, user_docs, attrs = _users(rng, users)
    group_list = _groups(rng, groups, domain_names)
    by_name = {g.name: g for g in group_list}
    for uid in user_ids:  # each user is a direct member of 1-3 groups
        for g in rng.sample(group_list, k=min(len(group_list), rng.choices([1, 2, 3],
                                                                            [4, 4, 2])[0])):
            g.members.append(uid)
    closure = _closure(group_list, by_name)  # group -> its users incl. nested groups

    # ---------------------------------------------------------------- products
    per_domain = [products // domains + (1 if i < products % domains else 0)
                  for i in range(domains)]
    specs: list[dict[str, Any]] = []
    rules: dict[str, list[Rule]] = {}
    approvals: list[dict[str, Any]] = []
    counter = 0
    for d, count in zip(domain_names, per_domain):
        team = f"{d}-team"
        subtree = sorted((g for g in group_list if g.domain == d), key=lambda g: g.name)
        for _ in range(count):
            counter += 1
            name = f"{rng.choice(NOUNS)}_{counter:04d}"
            spec, product_rules, product_approvals = _product(
                rng, d, name, team, subtree, group_list, closure, user_ids, specs, users,
                freshness)
            specs.append(spec)
            rules[f"{d}/{name}"] = product_rules
            approvals += product_approvals

    # approvals the engine must ignore: expired and pending ones
    for i in range(max(1, len(approvals) // 10)):
        spec = rng.choice(specs)
        port = rng.choice(spec["ports"])["name"]
        approvals.append({"principal": rng.choice(user_ids),
                          "product": f"{spec['domain']}/{spec['name']}", "port": port,
                          "access": "read",
                          **({"expires": EXPIRED, "status": "approved"} if i % 2 == 0
                             else {"expires": ACTIVE_EXPIRY, "status": "pending"})})
    for i, a in enumerate(approvals, start=1):
        a["id"] = f"req-{i:05d}"

    # ---------------------------------------------------------------- write
    out.mkdir(parents=True, exist_ok=True)
    _write_config(out, domain_names, specs)
    _dump(out / "directory.yaml", {
        "users": user_docs,
        "groups": {g.name: {"members": sorted(g.members), "subgroups": sorted(g.subgroups)}
                   for g in group_list},
    }, "# Synthetic directory (bench/generate.py): users and nested groups.\n")
    _dump(out / "approvals.yaml",
          {"approvals": [{k: a[k] for k in ("id", "principal", "product", "port", "access",
                                             "expires", "status")} for a in approvals]},
          "# Synthetic access requests; only approved, unexpired ones reach OPA.\n")
    seed_sql = ["-- Every port schema and table of the synthetic mesh (bench/generate.py).\n"]
    for spec in specs:
        folder = out / "products" / spec["domain"] / spec["name"]
        folder.mkdir(parents=True)
        _dump(folder / "product.yaml", spec, "")
        (folder / "policy.rego").write_text(_policy(spec, rules[f"{spec['domain']}/"
                                                                f"{spec['name']}"]))
        for port in spec["ports"]:
            schema = port["location"]["schema"]
            seed_sql.append(f'CREATE SCHEMA IF NOT EXISTS "{schema}";\n')
            for ds in port["datasets"]:
                cols = ", ".join(f'"{c["name"]}" {c["type"]}' for c in ds["columns"])
                seed_sql.append(f'CREATE TABLE IF NOT EXISTS "{schema}"."{ds["name"]}" '
                                f"({cols});\n")
    (out / "seed.sql").write_text("".join(seed_sql))

    # ---------------------------------------------------------------- expected access
    today = dt.date.today().isoformat()
    active: dict[tuple[str, str, str], set[str]] = {}
    for a in approvals:
        if a["status"] == "approved" and a["expires"] >= today:
            active.setdefault((a["product"], a["port"], a["access"]), set()).add(a["principal"])
    eu = set(EU)
    expected: set[tuple[str, str, str, str]] = set()
    users_per_product: dict[str, int] = {}
    for ref, product_rules in rules.items():
        found: set[tuple[str, str, str, str]] = set()
        for r in product_rules:
            if r.kind == "members":
                who = closure[r.group or ""]
            elif r.kind == "attribute":
                who = {u for u in user_ids if attrs[u]["department"] == r.department
                       and attrs[u]["country"] in eu
                       and (r.team is None or u in closure[r.team])}
            else:
                who = active.get((ref, r.port, r.access), set())
            found |= {(ref, r.port, u, r.access) for u in who}
        expected |= found
        users_per_product[ref] = len({f[2] for f in found})
    fractions = [n / users for n in users_per_product.values()]
    summary = {
        "seed": seed, "products": products, "users": users, "groups": groups,
        "domains": domains,
        "ports": sum(len(s["ports"]) for s in specs),
        "datasets": sum(len(p["datasets"]) for s in specs for p in s["ports"]),
        "pii_ports": sum(1 for s in specs for p in s["ports"]
                         if any(c.get("pii") for d in p["datasets"] for c in d["columns"])),
        "approvals": len(approvals),
        "active_approvals": sum(len(v) for v in active.values()),
        "max_group_depth": max(g.depth for g in group_list),
        "expected_access": len(expected),
        "mean_user_fraction_per_product": sum(fractions) / len(fractions),
        "min_user_fraction_per_product": min(fractions),
        "max_user_fraction_per_product": max(fractions),
    }
    (out / "bench-manifest.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["expected"] = expected
    return summary


# -------------------------------------------------------------------- directory

def _domain_names(n: int) -> list[str]:
    names = []
    for i in range(n):
        word = DOMAIN_WORDS[i % len(DOMAIN_WORDS)]
        names.append(word if i < len(DOMAIN_WORDS) else f"{word}{i // len(DOMAIN_WORDS) + 1}")
    return names


def _users(rng: random.Random, n: int):
    ids, docs, attrs = [], {}, {}
    width = max(4, len(str(n)))
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        uid = f"{first}.{last}{i:0{width}d}"
        a = {"department": rng.choices(DEPARTMENTS, DEPARTMENT_WEIGHTS)[0],
             "country": rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
             "employment_type": "contractor" if rng.random() < 0.1 else "employee"}
        ids.append(uid)
        attrs[uid] = a
        docs[uid] = {"display_name": f"{first.title()} {last.title()}",
                     "email": f"{uid}@example.com", "attributes": a}
    return ids, docs, attrs


def _groups(rng: random.Random, k: int, domains: list[str]) -> list[Group]:
    """A forest: one team root per domain, then each further group either a new
    cross-functional root (10 %) or a child of a random group of depth < 3."""
    groups = [Group(f"{d}-team", 1, d, None) for d in domains]
    parents = list(groups)
    counts: dict[str, int] = {}
    for _ in range(k - len(domains)):
        if rng.random() < 0.10 or not parents:
            topic = rng.choice(TOPICS)
            counts[topic] = counts.get(topic, 0) + 1
            group = Group(f"{topic}-{counts[topic]}", 1, None, None)
        else:
            parent = rng.choice(parents)
            base = f"{parent.domain}-{rng.choice(FUNCTIONS)}" if parent.domain else parent.name
            counts[base] = counts.get(base, 0) + 1
            group = Group(f"{base}-{counts[base]}", parent.depth + 1, parent.domain,
                          parent.name)
            parent.subgroups.append(group.name)
        groups.append(group)
        if group.depth < 3:
            parents.append(group)
    return groups


def _closure(groups: list[Group], by_name: dict[str, Group]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}

    def visit(g: Group) -> frozenset[str]:
        if g.name not in out:
            users = set(g.members)
            for sub in g.subgroups:
                users |= visit(by_name[sub])
            out[g.name] = frozenset(users)
        return out[g.name]

    for g in groups:
        visit(g)
    return out


# -------------------------------------------------------------------- products

def _nearest(rng: random.Random, candidates: list[Group], closure, size: float) -> Group:
    """A random one of the three candidates whose size is nearest ``size``."""
    ranked = sorted(candidates, key=lambda g: (abs(len(closure[g.name]) - size), g.name))
    return rng.choice(ranked[:3])


def _product(rng, domain, name, team, subtree, all_groups, closure, user_ids, earlier, users,
             freshness=False):
    classification = rng.choices(CLASSIFICATIONS, CLASSIFICATION_WEIGHTS)[0]
    rank = RANK[classification]
    access = "open" if rank <= 1 and rng.random() < (0.7 if rank == 0 else 0.3) \
        else "approval-required"
    pii = rank >= 1 and rng.random() < (0.1 if rank == 1 else 0.35)
    restricted_product = classification == "secret"
    ref = f"{domain}/{name}"

    ports, rules, approvals = [], [], []
    port_names = rng.sample(PORT_NAMES, k=rng.choices([1, 2], [6, 4])[0])
    pii_port = rng.randrange(len(port_names)) if pii else -1
    attribute_port = rng.randrange(len(port_names)) if rng.random() < 0.2 else -1
    for i, port in enumerate(port_names):
        port_pii = i == pii_port or (pii and rng.random() < 0.3)
        restricted = restricted_product or port_pii
        datasets = []
        for ds_name in rng.sample(DATASET_NAMES, k=rng.choices([1, 2, 3], [5, 3, 2])[0]):
            columns = [{"name": f"{ds_name}_id", "type": "text"}]
            columns += [{"name": c, "type": t} for c, t in rng.sample(COLUMNS, k=rng.randint(2, 6))]
            if port_pii and (not datasets or rng.random() < 0.5):
                columns += [{"name": c, "type": t, "pii": True}
                            for c, t in rng.sample(PII_COLUMNS, k=rng.randint(1, 3))]
            datasets.append({"name": ds_name, "columns": columns})
            timed = [c["name"] for c in columns if c["name"] in ("updated_at", "created_at")]
            if freshness and timed:
                datasets[-1]["freshness_column"] = sorted(timed)[-1]  # updated_at first
        ports.append({"name": port, "target": "warehouse",
                      "location": {"schema": f"{name}_{port}"}, "datasets": datasets})

        # who reads: one group (nested), sized about 0.5-3 % of the users
        pool = subtree if restricted else all_groups
        group = _nearest(rng, pool, closure, rng.uniform(0.005, 0.03) * users)
        rules.append(Rule("members", port, "read", group=group.name))
        if i == attribute_port:
            rules.append(Rule("attribute", port, "read",
                              department=rng.choices(DEPARTMENTS, DEPARTMENT_WEIGHTS)[0],
                              team=team if restricted else None))
        if rng.random() < 0.3:  # a small group of the domain writes
            writer = _nearest(rng, subtree, closure, 0.002 * users)
            rules.append(Rule("members", port, "write", group=writer.name))
        if access == "approval-required":
            rules.append(Rule("approved", port, "read"))
            if rng.random() < 0.35:
                for who in rng.sample(user_ids, k=min(len(user_ids), rng.randint(1, 3))):
                    approvals.append({"principal": who, "product": ref, "port": port,
                                      "access": "read", "expires": ACTIVE_EXPIRY,
                                      "status": "approved"})

    inputs = []
    if earlier and rng.random() < 0.4:
        for source in rng.sample(earlier, k=min(len(earlier), rng.randint(1, 2))):
            entry: dict[str, Any] = {"product": f"{source['domain']}/{source['name']}"}
            if RANK[source["classification"]] > rank:
                entry["exception"] = "Aggregated; no record-level data of the input is kept."
            inputs.append(entry)

    owner = rng.choice(subtree).name
    spec: dict[str, Any] = {
        "name": name, "domain": domain,
        "description": f"Synthetic {classification} product {ref} for the benchmark.",
        "owner": owner, "classification": classification, "access": access,
        "sharing_agreement": f"https://wiki.example.com/dsa/{domain}/{name}",
        "distribution": "none" if rank >= 2 else rng.choice(["none", "unmodified",
                                                             "modified"]),
        "type": rng.choice(["source-aligned", "consumer-aligned"]),
    }
    if pii:
        spec["privacy"] = {"contains_pii": True, "regulations": ["gdpr"]}
    if rng.random() < 0.5:
        spec["slos"] = [{"name": "freshness", "target": rng.choice(["1h", "24h", "7d"]),
                         "indicator": "max(updated_at) lag"}]
    if inputs:
        spec["inputs"] = inputs
    spec["ports"] = ports
    return spec, rules, approvals


def _policy(spec: dict[str, Any], rules: list[Rule]) -> str:
    domain, name = spec["domain"], spec["name"]
    ref = f"{domain}/{name}"
    lines = [f"# {ref} — synthetic policy ({spec['classification']}).",
             f"package products.{domain}.{name}", "", "import data.govern.lib", ""]
    for r in rules:
        helper = "lib.write" if r.access == "write" else "lib.read"
        if r.kind == "members":
            lines += [f"# Members of {r.group} (incl. nested groups) {r.access} {r.port}.",
                      f'grants contains {helper}(user, "{r.port}") if some user in '
                      f'lib.members("{r.group}")']
        elif r.kind == "attribute":
            who = f"{r.department} department in the EU" + \
                  (f", within {r.team}" if r.team else "")
            lines += [f"# The {who} {r.access} {r.port}.",
                      f'grants contains {helper}(user, "{r.port}") if {{',
                      f'\tsome user in lib.users_where("department", "{r.department}")',
                      '\tlib.attr(user, "country") in lib.eu_countries']
            if r.team:
                lines.append(f'\tlib.member_of(user, "{r.team}")')
            lines.append("}")
        else:
            lines += [f"# Approved requests {r.access} {r.port}.",
                      f'grants contains {helper}(user, "{r.port}") if some user in '
                      f'lib.approved("{ref}", "{r.port}", "{r.access}")']
        lines.append("")
    return "\n".join(lines[:-1]) + "\n"


# -------------------------------------------------------------------- files

def _write_config(out: Path, domains: list[str], specs: list[dict[str, Any]]) -> None:
    # each domain's namespace: the schemas of its own products' ports
    namespaces: dict[str, list[str]] = {d: [] for d in domains}
    for spec in specs:
        namespaces[spec["domain"]].append(f"{spec['name']}_*")
    config = {
        "name": "bench",
        "products": ["products/*/*"],
        "managed_prefix": "dp_",
        "directory": {"source": "file", "path": "directory.yaml"},
        "approvals": {"path": "approvals.yaml"},
        # generous: the benchmark measures how long decisions take rather than fail at 30 s
        "opa": {"timeout_seconds": 3600},
        "targets": {"warehouse": {"type": "postgresql", "dsn_env": "GOVERN_WAREHOUSE_DSN",
                                  "create_login_roles": True}},
        "domains": {d: {"team": f"{d}-team", "namespaces": {"warehouse": namespaces[d]}}
                    for d in domains},
        "guards": {"max_revoke_fraction": 1.0},
    }
    _dump(out / "govern.yaml", config, "# Synthetic mesh written by bench/generate.py.\n")


def _dump(path: Path, data: Any, header: str) -> None:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)
    path.write_text(header + text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--products", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--groups", type=int, required=True)
    parser.add_argument("--domains", type=int, default=None,
                        help="default: products/20, between 2 and 50")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--freshness", action="store_true",
                        help="name updated_at / created_at as each dataset's freshness_column")
    args = parser.parse_args(argv)
    try:
        summary = generate(args.out, args.products, args.users, args.groups, args.domains,
                           args.seed, args.freshness)
    except ValueError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 1
    summary.pop("expected")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
