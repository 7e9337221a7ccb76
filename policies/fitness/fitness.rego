# METADATA
# title: govern.fitness
# description: |
#   The mesh's fitness functions: every product against the six characteristics
#   (discoverable, addressable, self-describing, secure, trustworthy, interoperable).
#   Input: {"today", "grants", "facts": {ref: {store, freshness, catalog, addresses}}},
#   see docs/fitness.md. Output: `checks` (one object per product and check; add a check by
#   adding a rule to this set, in any file of this package) and `report` (per product and
#   characteristic: status red / amber / green / n/a, with its checks, waivers applied).
package govern.fitness

import data.govern.lib

characteristics := [
	"discoverable", "addressable", "self-describing",
	"secure", "trustworthy", "interoperable",
]

default products := {}

products := data.mesh.products

facts(ref) := object.get(object.get(input, "facts", {}), ref, {})

# A check result: green when the condition holds, else red with `reason`.
verdict(ref, id, true, _) := {"product": ref, "check": id, "status": "green", "reason": ""}

verdict(ref, id, false, reason) := {"product": ref, "check": id, "status": "red", "reason": reason}

# A check whose fact could not be gathered: amber, with why.
amber(ref, id, reason) := {"product": ref, "check": id, "status": "amber", "reason": reason}

not_applicable(ref, id, reason) := {"product": ref, "check": id, "status": "n/a", "reason": reason}

listing(items) := concat("; ", array.slice(sort(items), 0, 5))

datasets(p) := [[port, ds] | some port in p.ports; some ds in port.datasets]

# ---------------------------------------------------------------- self-describing

words(text) := count(regex.split(`\s+`, trim_space(text)))

checks contains verdict(ref, "self-describing.description", words(p.description) >= 3, sprintf(
	"%s: description: too short to describe the product",
	[p.file],
)) if {
	some ref, p in products
}

checks contains verdict(ref, "self-describing.dataset-descriptions", count(missing) == 0, sprintf(
	"missing: %s",
	[listing(missing)],
)) if {
	some ref, p in products
	missing := [sprintf("%s: ports[%d].datasets[%d].description", [p.file, port.index, ds.index]) |
		some [port, ds] in datasets(p)
		not has_text(ds.description)
	]
}

checks contains verdict(ref, "self-describing.columns", count(missing) == 0, sprintf(
	"columns without a type or description: %s",
	[listing(missing)],
)) if {
	some ref, p in products
	missing := [sprintf("%s: ports[%d].datasets[%d].columns[%d] (%s)", [p.file, port.index, ds.index, i, col.name]) |
		some [port, ds] in datasets(p)
		some i, col in ds.columns
		not described_column(col)
	]
}

checks contains c if {
	some ref, p in products
	samples := [ds.name | some [_, ds] in datasets(p); ds.sample]
	c := sample_check(ref, p, samples)
}

sample_check(ref, p, samples) := verdict(ref, "self-describing.sample", false, sprintf(
	"%s: no dataset declares `sample: true`",
	[p.file],
)) if {
	count(samples) == 0
} else := amber(ref, "self-describing.sample", sprintf("store unreachable: %s", [store(ref).error])) if {
	not store(ref).reachable
} else := verdict(ref, "self-describing.sample", count(absent) == 0, sprintf(
	"sample dataset not readable in the store: %s",
	[listing(absent)],
)) if {
	absent := [name | some name in samples; not name in store(ref).existing]
}

has_text(v) if {
	is_string(v)
	trim_space(v) != ""
}

described_column(col) if {
	has_text(col.type)
	has_text(col.description)
}

# ---------------------------------------------------------------- addressable

# [address, "ref port.dataset"] of every dataset with an address, computed once.
address_pairs := [[address, sprintf("%s %s.%s", [ref, port, ds])] |
	some ref, f in object.get(input, "facts", {})
	some port, by_dataset in object.get(f, "addresses", {})
	some ds, address in by_dataset
	is_string(address)
]

known_addresses contains a if some [a, _] in address_pairs

# Who has each address, through a set and an indexed comprehension: one lookup costs the same
# at any mesh size. (A partial set rule over the facts was evaluated again for every address
# looked up: quadratic in the number of addresses; bench/README.md.)
address_owners[a] := {owner | some [b, owner] in address_pairs; b == a} if some a in known_addresses

checks contains c if {
	some ref, p in products
	addresses := object.get(facts(ref), "addresses", {})
	unresolved := [sprintf("%s.%s", [port.name, ds.name]) |
		some [port, ds] in datasets(p)
		not is_string(object.get(object.get(addresses, port.name, {}), ds.name, null))
	]
	shared := [sprintf("%s is also %s", [a, concat(", ", sort(others))]) |
		some port_name, by_dataset in addresses
		some ds_name, a in by_dataset
		is_string(a)
		others := address_owners[a] - {sprintf("%s %s.%s", [ref, port_name, ds_name])}
		count(others) > 0
	]
	c := address_check(ref, unresolved, shared)
}

address_check(ref, unresolved, shared) := amber(ref, "addressable.unique-address", sprintf(
	"no address could be derived for: %s",
	[listing(unresolved)],
)) if {
	count(unresolved) > 0
} else := verdict(ref, "addressable.unique-address", count(shared) == 0, sprintf(
	"addresses not unique: %s",
	[listing(shared)],
))

# ---------------------------------------------------------------- discoverable

checks contains c if {
	some ref, _ in products
	catalog := object.get(facts(ref), "catalog", {})
	c := catalog_check(ref, catalog)
}

catalog_check(ref, catalog) := verdict(
	ref, "discoverable.published", catalog.published,
	"not published in the catalog (run `govern catalog publish`)",
) if {
	is_boolean(catalog.published)
} else := amber(ref, "discoverable.published", object.get(catalog, "error", "catalog not checked"))

# ---------------------------------------------------------------- secure

store(ref) := object.get(facts(ref), "store", {"reachable": false, "error": "no facts gathered"})

checks contains c if {
	some ref, _ in products
	c := foreign_check(ref)
}

foreign_check(ref) := amber(ref, "secure.blocked-by-default", sprintf("store unreachable: %s", [store(ref).error])) if {
	not store(ref).reachable
} else := verdict(ref, "secure.blocked-by-default", count(grants) == 0, sprintf(
	"grants outside govern's management: %s",
	[listing(grants)],
)) if {
	grants := [sprintf("%s on %s to %s", [g.privilege, g.dataset, g.grantee]) |
		some g in store(ref).foreign_grants
	]
}

# Without the approvals (request store unreachable) who may read PII is not known: amber.
approvals_unknown if is_string(input.approvals_error)

checks contains amber(ref, "secure.pii-readers", sprintf("approvals unavailable: %s", [input.approvals_error])) if {
	approvals_unknown
	some ref, _ in products
}

# The grants of each product, grouped once. OPA indexes this comprehension; a scan of every
# grant for every product made the report grow with products × grants (bench/README.md).
grants_of[ref] := [g | some g in object.get(input, "grants", []); g.product == ref] if some ref, _ in products

checks contains verdict(ref, "secure.pii-readers", count(outsiders) == 0, sprintf(
	"PII readable without an approval by: %s",
	[listing(outsiders)],
)) if {
	not approvals_unknown
	some ref, p in products
	outsiders := [sprintf("%s (port %s)", [g.principal, g.port]) |
		some g in grants_of[ref]
		p.ports[g.port].pii
		not g.principal in lib.domain_members(p.domain)
		not g.principal in lib.approved(ref, g.port, g.access)
	]
}

# ---------------------------------------------------------------- trustworthy

checks contains verdict(ref, "trustworthy.slos", count(p.slos) > 0, sprintf(
	"%s: slos: none published",
	[p.file],
)) if {
	some ref, p in products
}

# The product's freshness objective: the first SLO named freshness (or refresh).
freshness_slo(p) := slos[0] if {
	slos := [slo | some slo in p.slos; slo.name in {"freshness", "refresh"}]
	count(slos) > 0
}

checks contains c if {
	some ref, p in products
	c := freshness_check(ref, p)
}

freshness_check(ref, p) := not_applicable(ref, "trustworthy.freshness", "no freshness SLO") if {
	not freshness_slo(p)
} else := amber(ref, "trustworthy.freshness", sprintf("%s: no dataset declares freshness_column", [p.file])) if {
	count(timed_datasets(p)) == 0
} else := amber(ref, "trustworthy.freshness", sprintf(
	"%s: slos: freshness target %q is not a duration like 24h",
	[p.file, freshness_slo(p).target],
)) if {
	not is_number(freshness_slo(p).target_seconds)
} else := amber(ref, "trustworthy.freshness", sprintf("store unreachable: %s", [store(ref).error])) if {
	not store(ref).reachable
} else := amber(ref, "trustworthy.freshness", sprintf(
	"not measured (table missing in the store?): %s",
	[listing(unmeasured(ref, p))],
)) if {
	count(unmeasured(ref, p)) > 0
} else := verdict(ref, "trustworthy.freshness", count(stale(ref, p)) == 0, sprintf(
	"stale against the %s SLO: %s",
	[freshness_slo(p).target, listing(stale(ref, p))],
))

# Datasets that declare a timestamp column.
timed_datasets(p) := [ds.name | some [_, ds] in datasets(p); is_string(ds.freshness_column)]

measured(ref) := object.get(facts(ref), "freshness", {})

unmeasured(ref, p) := [name | some name in timed_datasets(p); not measured(ref)[name]]

stale(ref, p) := [sprintf("%s %s", [name, age_text(m)]) |
	some name, m in measured(ref)
	too_old(m.age_seconds, freshness_slo(p).target_seconds)
]

too_old(null, _)

too_old(age, limit) if age > limit

age_text(m) := m.error if is_string(m.error)

else := "has never been refreshed (empty)" if m.age_seconds == null

else := sprintf("last refreshed %dh ago", [round(m.age_seconds / 3600)])

# ---------------------------------------------------------------- interoperable

checks contains verdict(ref, "interoperable.formats", count(bad) == 0, sprintf(
	"formats not allowed by the mesh (%s): %s",
	[concat(", ", allowed), listing(bad)],
)) if {
	some ref, p in products
	allowed := object.get(object.get(data.mesh, "fitness", {}), "allowed_formats", ["table", "view"])
	bad := [sprintf("%s: ports[%d].format: %s", [p.file, port.index, port.format]) |
		some port in p.ports
		not port.format in allowed
	]
}

# ---------------------------------------------------------------- waivers and the report

waivers(ref) := array.concat(object.get(products[ref], "waivers", []), [w |
	some w in object.get(object.get(data.mesh, "fitness", {}), "waivers", [])
	w.product == ref
])

effective contains waived(c) if some c in checks

# The waivers of a check, one per expiry date, the latest last.
check_waivers(c) := [[x | some x in waivers(c.product); x.check == c.check; x.expires == expires][0] |
	some expires in sort({w.expires | some w in waivers(c.product); w.check == c.check})
]

waived(c) := object.union(c, {"status": "waived", "waiver": latest}) if {
	c.status in {"red", "amber"}
	ws := check_waivers(c)
	latest := ws[count(ws) - 1]
	latest.expires >= input.today
} else := object.union(c, {"reason": sprintf("%s (waiver expired %s)", [c.reason, latest.expires])}) if {
	c.status in {"red", "amber"}
	ws := check_waivers(c)
	count(ws) > 0
	latest := ws[count(ws) - 1]
} else := c

characteristic(c) := split(c.check, ".")[0]

report[ref][ch] := {"status": overall(statuses), "checks": found} if {
	some ref, _ in products
	some ch in characteristics
	found := [c | some c in effective; c.product == ref; characteristic(c) == ch]
	statuses := {c.status | some c in found}
}

overall(s) := "red" if {
	"red" in s
} else := "amber" if {
	"amber" in s
} else := "green" if {
	count(s & {"green", "waived"}) > 0
} else := "n/a"
