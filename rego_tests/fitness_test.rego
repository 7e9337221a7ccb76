package govern.fitness_test

import data.govern.fitness

# Data and input shaped as engine/evaluate.py (mesh_data) and engine/fitness.py (gather) build them.

hcp := "hcp/hcp_master"

trials := "clinical/trial_results"

today := "2026-12-01"

# --- the mesh --------------------------------------------------------------------

column(name, type, description, pii) := {"name": name, "type": type, "description": description, "pii": pii}

dataset(index, name, columns, sample, freshness_column) := {
	"index": index, "name": name, "description": sprintf("One row per %s", [name]),
	"sample": sample, "freshness_column": freshness_column,
	"pii_columns": [c.name | some c in columns; c.pii],
	"columns": columns,
}

# A port is PII when one of its columns is (engine/spec.py Port.pii).
port(index, name, datasets) := {
	"name": name, "index": index, "target": "warehouse", "format": "table",
	"pii": count([c | some ds in datasets; some c in ds.columns; c.pii]) > 0,
	"datasets": datasets,
}

# target_seconds is what duration_seconds(target) gives: null unless a duration like 24h.
slo(name, target, seconds) := {"name": name, "target": target, "indicator": "measured daily", "target_seconds": seconds}

data_product(ref, description, slos, ports) := {
	"domain": domain, "name": name, "owner": sprintf("%s-stewards", [domain]), "stewards": [],
	"file": sprintf("products/%s/product.yaml", [ref]), "description": description,
	"classification": "confidential", "access": "approval-required", "type": "source-aligned",
	"contains_pii": count([p | some p in ports; p.pii]) > 0,
	"inputs": [], "slos": slos, "waivers": [], "ports": ports,
} if {
	[domain, name] := split(ref, "/")
}

hcp_columns := [
	column("hcp_id", "text", "Stable id of the professional", false),
	column("email", "text", "Work e-mail address", true),
	column("updated_at", "timestamptz", "Last change of the record", false),
]

by_country_columns := [column("country", "text", "ISO country code", false), column("hcps", "integer", "Count", false)]

hcp_master := data_product(hcp, "Golden record of healthcare professionals", [slo("freshness", "24h", 86400)], {
	"curated": port(0, "curated", [dataset(0, "hcp", hcp_columns, true, "updated_at")]),
	"summary": port(1, "summary", [dataset(0, "hcp_by_country", by_country_columns, false, null)]),
})

results_port := port(0, "results", [dataset(0, "outcomes", [column("id", "text", "Trial number", false)], true, null)])

# No freshness SLO: its trustworthy.freshness is n/a.
trial_results := data_product(trials, "Outcomes of trials", [slo("uptime", "99%", null)], {"results": results_port})

mesh := {
	"domains": {"clinical": {"team": "clinical-team"}, "hcp": {"team": "hcp-team"}},
	"products": {hcp: hcp_master, trials: trial_results},
	"fitness": {"allowed_formats": ["table", "view"], "waivers": []},
}

# The mesh with the value at path (below data.mesh) set.
mesh_with(path, value) := json.patch(mesh, [{"op": "add", "path": path, "value": value}])

# --- the directory and the approvals ---------------------------------------------

user(u, g) := {"id": u, "display_name": u, "email": sprintf("%s@example.com", [u]), "attributes": {}, "groups": g}

directory := {
	"users": {
		"heidi": user("heidi", ["hcp-stewards"]),
		"carol": user("carol", ["hcp-data-engineers"]),
		"dave": user("dave", ["clinical-team"]),
		"bob": user("bob", []),
		"frank": user("frank", []),
	},
	"groups": {
		"hcp-team": {"members": [], "subgroups": ["hcp-stewards"]},
		"hcp-stewards": {"members": ["heidi"], "subgroups": ["hcp-data-engineers"]},
		"hcp-data-engineers": {"members": ["carol"], "subgroups": []},
		"clinical-team": {"members": ["dave"], "subgroups": []},
	},
}

approval(id, who, ref, port_name) := {
	"id": id, "principal": who, "product": ref, "port": port_name,
	"access": "read", "expires": "2099-12-31",
}

approvals := [approval("req-1", "frank", hcp, "curated")]

# --- the input: desired grants and gathered facts -----------------------------------

grant(ref, port_name, who, access) := {"product": ref, "port": port_name, "principal": who, "access": access}

address(relation) := sprintf("postgresql://127.0.0.1:5432/pharma/%s", [relation])

store(existing) := {"reachable": true, "error": null, "foreign_grants": [], "existing": existing}

unreachable := {"reachable": false, "error": "target warehouse: cannot connect", "foreign_grants": [], "existing": []}

facts := {
	hcp: {
		"store": store(["hcp", "hcp_by_country"]),
		"freshness": {"hcp": {"age_seconds": 3600.0}},
		"addresses": {
			"curated": {"hcp": address("hcp_master.hcp")},
			"summary": {"hcp_by_country": address("hcp_master.hcp_by_country")},
		},
		"catalog": {"published": true},
	},
	trials: {
		"store": store(["outcomes"]),
		"freshness": {},
		"addresses": {"results": {"outcomes": address("trial_results.outcomes")}},
		"catalog": {"published": true},
	},
}

base_input := {
	"today": today,
	"grants": [
		grant(hcp, "curated", "carol", "write"), # in the domain team, through nesting
		grant(hcp, "curated", "heidi", "read"),
		grant(hcp, "curated", "frank", "read"), # an outsider, with an approval
		grant(hcp, "summary", "bob", "read"), # an outsider, but summary holds no PII
		grant(trials, "results", "dave", "read"),
	],
	"facts": facts,
}

input_with(path, value) := json.patch(base_input, [{"op": "add", "path": path, "value": value}])

public_grant := {"dataset": "hcp_master.hcp", "grantee": "PUBLIC", "privilege": "SELECT"}

# --- evaluating ----------------------------------------------------------------------

# The fitness decision over the directory and approvals above (add `with data.mesh`, `with input`).
decision := {"checks": c, "report": r} if {
	c := fitness.checks with data.directory as directory with data.approvals as approvals
	r := fitness.report with data.directory as directory with data.approvals as approvals
}

# The one check `id` of product ref in checks.
found(checks, ref, id) := c if {
	some c in checks
	c.product == ref
	c.check == id
}

# The check `id` of product ref as the report shows it (waivers applied).
reported(report, ref, id) := c if {
	some cell in report[ref]
	some c in cell.checks
	c.check == id
}

red(ref, id, reason) := {"product": ref, "check": id, "status": "red", "reason": reason}

amber(ref, id, reason) := {"product": ref, "check": id, "status": "amber", "reason": reason}

green(ref, id) := {"product": ref, "check": id, "status": "green", "reason": ""}

not_applicable(ref, id) := {"product": ref, "check": id, "status": "n/a", "reason": "no freshness SLO"}

# --- all green -------------------------------------------------------------------------

test_all_green_report if {
	out := decision with data.mesh as mesh with input as base_input
	object.keys(out.report) == {hcp, trials}
	{c.check | some c in out.report[trials].trustworthy.checks} == {"trustworthy.slos", "trustworthy.freshness"}
	every row in out.report {
		object.keys(row) == {"discoverable", "addressable", "self-describing", "secure", "trustworthy", "interoperable"}
		every cell in row {
			cell.status == "green"
		}
	}
}

test_all_green_checks if {
	out := decision with data.mesh as mesh with input as base_input
	count(out.checks) == 22 # the 11 checks, for each of the two products
	{c | some c in out.checks; c.status != "green"} == {not_applicable(trials, "trustworthy.freshness")}
	{c.reason | some c in out.checks; c.status == "green"} == {""}
}

# --- self-describing -------------------------------------------------------------------

test_self_describing_missing_dataset_description if {
	m := mesh_with(["products", hcp, "ports", "summary", "datasets", 0, "description"], null)
	out := decision with data.mesh as m with input as base_input
	id := "self-describing.dataset-descriptions"
	reason := "missing: products/hcp/hcp_master/product.yaml: ports[1].datasets[0].description"
	found(out.checks, hcp, id) == red(hcp, id, reason)
	out.report[hcp]["self-describing"].status == "red"
	out.report[trials]["self-describing"].status == "green"
}

test_self_describing_columns_without_type_or_description if {
	columns := ["products", hcp, "ports", "curated", "datasets", 0, "columns"]
	m := json.patch(mesh, [
		{"op": "add", "path": array.concat(columns, [1, "type"]), "value": null},
		{"op": "add", "path": array.concat(columns, [2, "description"]), "value": " "},
	])
	out := decision with data.mesh as m with input as base_input
	reason := concat("", [
		"columns without a type or description: ",
		"products/hcp/hcp_master/product.yaml: ports[0].datasets[0].columns[1] (email); ",
		"products/hcp/hcp_master/product.yaml: ports[0].datasets[0].columns[2] (updated_at)",
	])
	found(out.checks, hcp, "self-describing.columns") == red(hcp, "self-describing.columns", reason)
	out.report[hcp]["self-describing"].status == "red"
}

test_self_describing_no_sample if {
	m := mesh_with(["products", hcp, "ports", "curated", "datasets", 0, "sample"], false)
	out := decision with data.mesh as m with input as base_input
	reason := "products/hcp/hcp_master/product.yaml: no dataset declares `sample: true`"
	found(out.checks, hcp, "self-describing.sample") == red(hcp, "self-describing.sample", reason)
	out.report[hcp]["self-describing"].status == "red"
}

test_self_describing_sample_not_in_the_store if {
	inp := input_with(["facts", hcp, "store", "existing"], ["hcp_by_country"])
	out := decision with data.mesh as mesh with input as inp
	reason := "sample dataset not readable in the store: hcp"
	found(out.checks, hcp, "self-describing.sample") == red(hcp, "self-describing.sample", reason)
}

test_self_describing_short_description if {
	m := mesh_with(["products", hcp, "description"], "HCP master")
	out := decision with data.mesh as m with input as base_input
	reason := "products/hcp/hcp_master/product.yaml: description: too short to describe the product"
	found(out.checks, hcp, "self-describing.description") == red(hcp, "self-describing.description", reason)
}

test_self_describing_short_description_with_double_space if {
	m := mesh_with(["products", hcp, "description"], "HCP  master")
	out := decision with data.mesh as m with input as base_input
	found(out.checks, hcp, "self-describing.description").status == "red"
}

# --- addressable -----------------------------------------------------------------------

test_addressable_two_products_with_the_same_address if {
	inp := input_with(["facts", trials, "addresses", "results", "outcomes"], address("hcp_master.hcp"))
	out := decision with data.mesh as mesh with input as inp
	shared := "addresses not unique: postgresql://127.0.0.1:5432/pharma/hcp_master.hcp is also"
	hcp_reason := sprintf("%s clinical/trial_results results.outcomes", [shared])
	found(out.checks, hcp, "addressable.unique-address") == red(hcp, "addressable.unique-address", hcp_reason)
	trials_reason := sprintf("%s hcp/hcp_master curated.hcp", [shared])
	found(out.checks, trials, "addressable.unique-address") == red(trials, "addressable.unique-address", trials_reason)
	out.report[hcp].addressable.status == "red"
	out.report[trials].addressable.status == "red"
}

test_addressable_unresolved_address_is_amber if {
	inp := input_with(["facts", hcp, "addresses", "summary", "hcp_by_country"], null) # no address base
	out := decision with data.mesh as mesh with input as inp
	reason := "no address could be derived for: summary.hcp_by_country"
	found(out.checks, hcp, "addressable.unique-address") == amber(hcp, "addressable.unique-address", reason)
	out.report[hcp].addressable.status == "amber"
}

# --- discoverable ----------------------------------------------------------------------

test_discoverable_not_published_is_red if {
	inp := input_with(["facts", hcp, "catalog"], {"published": false})
	out := decision with data.mesh as mesh with input as inp
	reason := "not published in the catalog (run `govern catalog publish`)"
	found(out.checks, hcp, "discoverable.published") == red(hcp, "discoverable.published", reason)
	out.report[hcp].discoverable.status == "red"
}

test_discoverable_catalog_not_checked_is_amber if {
	inp := input_with(["facts", hcp, "catalog"], {"published": null, "error": "no catalog has been checked"})
	out := decision with data.mesh as mesh with input as inp
	reason := "no catalog has been checked"
	found(out.checks, hcp, "discoverable.published") == amber(hcp, "discoverable.published", reason)
	out.report[hcp].discoverable.status == "amber"
}

# --- secure ------------------------------------------------------------------------------

test_secure_foreign_grant_to_public_is_red if {
	inp := input_with(["facts", hcp, "store", "foreign_grants"], [public_grant])
	out := decision with data.mesh as mesh with input as inp
	reason := "grants outside govern's management: SELECT on hcp_master.hcp to PUBLIC"
	found(out.checks, hcp, "secure.blocked-by-default") == red(hcp, "secure.blocked-by-default", reason)
	out.report[hcp].secure.status == "red"
	out.report[trials].secure.status == "green"
}

# As gather leaves a product whose target fails: nothing on existence, freshness, addresses.
test_secure_store_unreachable_is_amber if {
	inp := json.patch(base_input, [
		{"op": "add", "path": ["facts", hcp, "store"], "value": unreachable},
		{"op": "add", "path": ["facts", hcp, "freshness"], "value": {}},
		{"op": "add", "path": ["facts", hcp, "addresses"], "value": {}},
	])
	out := decision with data.mesh as mesh with input as inp
	reason := "store unreachable: target warehouse: cannot connect"
	found(out.checks, hcp, "secure.blocked-by-default") == amber(hcp, "secure.blocked-by-default", reason)
	found(out.checks, hcp, "self-describing.sample").status == "amber"
	found(out.checks, hcp, "trustworthy.freshness").status == "amber"
	amber_cells := {ch | some ch, cell in out.report[hcp]; cell.status == "amber"}
	amber_cells == {"secure", "self-describing", "trustworthy", "addressable"}
}

test_secure_pii_port_granted_to_an_outsider_without_approval_is_red if {
	inp := input_with(["grants", "-"], grant(hcp, "curated", "bob", "read"))
	out := decision with data.mesh as mesh with input as inp
	reason := "PII readable without an approval by: bob (port curated)"
	found(out.checks, hcp, "secure.pii-readers") == red(hcp, "secure.pii-readers", reason)
	out.report[hcp].secure.status == "red"
}

test_secure_pii_port_granted_to_an_outsider_with_approval_is_green if {
	inp := input_with(["grants", "-"], grant(hcp, "curated", "bob", "read"))
	with_bob := array.concat(approvals, [approval("req-2", "bob", hcp, "curated")])
	out := {"checks": fitness.checks, "report": fitness.report} with data.mesh as mesh with input as inp
		with data.directory as directory with data.approvals as with_bob
	found(out.checks, hcp, "secure.pii-readers") == green(hcp, "secure.pii-readers")
	out.report[hcp].secure.status == "green"
}

# --- trustworthy -------------------------------------------------------------------------

test_trustworthy_no_slos_is_red if {
	m := mesh_with(["products", hcp, "slos"], [])
	out := decision with data.mesh as m with input as base_input
	reason := "products/hcp/hcp_master/product.yaml: slos: none published"
	found(out.checks, hcp, "trustworthy.slos") == red(hcp, "trustworthy.slos", reason)
	out.report[hcp].trustworthy.status == "red"
}

test_trustworthy_older_than_the_freshness_slo_is_red if {
	inp := input_with(["facts", hcp, "freshness", "hcp"], {"age_seconds": 259200.0})
	out := decision with data.mesh as mesh with input as inp
	reason := "stale against the 24h SLO: hcp last refreshed 72h ago"
	found(out.checks, hcp, "trustworthy.freshness") == red(hcp, "trustworthy.freshness", reason)
	out.report[hcp].trustworthy.status == "red"
}

test_trustworthy_empty_table_is_red if {
	inp := input_with(["facts", hcp, "freshness", "hcp"], {"age_seconds": null})
	out := decision with data.mesh as mesh with input as inp
	reason := "stale against the 24h SLO: hcp has never been refreshed (empty)"
	found(out.checks, hcp, "trustworthy.freshness") == red(hcp, "trustworthy.freshness", reason)
	out.report[hcp].trustworthy.status == "red"
}

test_trustworthy_freshness_column_not_in_the_table_is_red if {
	measured := {"age_seconds": null, "error": "column updated_at not in hcp_master.hcp"}
	inp := input_with(["facts", hcp, "freshness", "hcp"], measured)
	out := decision with data.mesh as mesh with input as inp
	reason := "stale against the 24h SLO: hcp column updated_at not in hcp_master.hcp"
	found(out.checks, hcp, "trustworthy.freshness") == red(hcp, "trustworthy.freshness", reason)
}

test_trustworthy_no_freshness_slo_is_not_applicable if {
	m := mesh_with(["products", hcp, "slos"], [slo("availability", "99%", null)])
	out := decision with data.mesh as m with input as base_input
	found(out.checks, hcp, "trustworthy.freshness") == not_applicable(hcp, "trustworthy.freshness")
	out.report[hcp].trustworthy.status == "green" # n/a does not count
}

test_trustworthy_freshness_target_not_a_duration_is_amber if {
	m := mesh_with(["products", hcp, "slos"], [slo("freshness", "daily", null)])
	out := decision with data.mesh as m with input as base_input
	reason := `products/hcp/hcp_master/product.yaml: slos: freshness target "daily" is not a duration like 24h`
	found(out.checks, hcp, "trustworthy.freshness") == amber(hcp, "trustworthy.freshness", reason)
	out.report[hcp].trustworthy.status == "amber"
}

test_trustworthy_unmeasured_dataset_is_amber if {
	inp := input_with(["facts", hcp, "freshness"], {})
	out := decision with data.mesh as mesh with input as inp
	found(out.checks, hcp, "trustworthy.freshness").status == "amber"
}

test_trustworthy_two_freshness_slos_give_one_check if {
	m := mesh_with(["products", hcp, "slos"], [slo("freshness", "24h", 86400), slo("refresh", "1h", 3600)])
	out := decision with data.mesh as m with input as base_input
	count({c | some c in out.checks; c.product == hcp; c.check == "trustworthy.freshness"}) == 1
}

# --- interoperable -----------------------------------------------------------------------

test_interoperable_format_not_allowed_is_red if {
	m := mesh_with(["products", hcp, "ports", "summary", "format"], "csv")
	out := decision with data.mesh as m with input as base_input
	reason := "formats not allowed by the mesh (table, view): products/hcp/hcp_master/product.yaml: ports[1].format: csv"
	found(out.checks, hcp, "interoperable.formats") == red(hcp, "interoperable.formats", reason)
	out.report[hcp].interoperable.status == "red"
}

# --- waivers -----------------------------------------------------------------------------

waiver(check, expires) := {"check": check, "reason": "public portal data", "approver": "heidi", "expires": expires}

public_input := input_with(["facts", hcp, "store", "foreign_grants"], [public_grant])

public_red := red(
	hcp, "secure.blocked-by-default",
	"grants outside govern's management: SELECT on hcp_master.hcp to PUBLIC",
)

waived_mesh := mesh_with(["products", hcp, "waivers"], [waiver("secure.blocked-by-default", today)])

test_waiver_unexpired_is_waived_and_green if {
	out := decision with data.mesh as waived_mesh with input as public_input # expires today
	waived := {"status": "waived", "waiver": waiver("secure.blocked-by-default", today)}
	reported(out.report, hcp, "secure.blocked-by-default") == object.union(public_red, waived)
	out.report[hcp].secure.status == "green"
	found(out.checks, hcp, "secure.blocked-by-default").status == "red" # `checks` is not waived
}

test_waiver_expired_is_red_again if {
	inp := object.union(public_input, {"today": "2026-12-02"})
	out := decision with data.mesh as waived_mesh with input as inp
	reason := sprintf("%s (waiver expired 2026-12-01)", [public_red.reason])
	reported(out.report, hcp, "secure.blocked-by-default") == red(hcp, "secure.blocked-by-default", reason)
	out.report[hcp].secure.status == "red"
}

test_waiver_from_the_platform if {
	w := object.union(waiver("secure.blocked-by-default", "2027-01-31"), {"product": hcp})
	other := object.union(waiver("secure.blocked-by-default", "2027-01-31"), {"product": trials, "approver": "dave"})
	m := mesh_with(["fitness", "waivers"], [other, w])
	out := decision with data.mesh as m with input as public_input
	reported(out.report, hcp, "secure.blocked-by-default") == object.union(public_red, {"status": "waived", "waiver": w})
	out.report[hcp].secure.status == "green"
}

test_waiver_of_a_green_check_changes_nothing if {
	out := decision with data.mesh as waived_mesh with input as base_input
	reported(out.report, hcp, "secure.blocked-by-default") == green(hcp, "secure.blocked-by-default")
}

test_waiver_two_for_the_same_check if {
	id := "secure.blocked-by-default"
	m := mesh_with(["products", hcp, "waivers"], [waiver(id, "2026-10-31"), waiver(id, "2026-11-30")])
	out := decision with data.mesh as m with input as public_input
	out.report[hcp].secure.status == "red"
}

# --- overall -----------------------------------------------------------------------------

test_overall_precedence if {
	fitness.overall({"red", "amber", "green", "waived", "n/a"}) == "red"
	fitness.overall({"amber", "green", "waived", "n/a"}) == "amber"
	fitness.overall({"green", "n/a"}) == "green"
	fitness.overall({"waived", "n/a"}) == "green"
	fitness.overall({"n/a"}) == "n/a"
	fitness.overall(set()) == "n/a"
}

test_overall_red_over_amber_in_the_report if {
	# self-describing: the description red, the sample amber (store unreachable)
	m := mesh_with(["products", hcp, "description"], "HCP")
	inp := input_with(["facts", hcp, "store"], unreachable)
	out := decision with data.mesh as m with input as inp
	{c.status | some c in out.report[hcp]["self-describing"].checks} == {"red", "amber", "green"}
	out.report[hcp]["self-describing"].status == "red"
}

test_overall_amber_over_waived_in_the_report if {
	# secure: blocked-by-default amber (store unreachable), pii-readers red but waived
	m := mesh_with(["products", hcp, "waivers"], [waiver("secure.pii-readers", today)])
	inp := json.patch(base_input, [
		{"op": "add", "path": ["grants", "-"], "value": grant(hcp, "curated", "bob", "read")},
		{"op": "add", "path": ["facts", hcp, "store"], "value": unreachable},
	])
	out := decision with data.mesh as m with input as inp
	{c.status | some c in out.report[hcp].secure.checks} == {"amber", "waived"}
	out.report[hcp].secure.status == "amber"
}

test_overall_waived_and_not_applicable_are_green_in_the_report if {
	# trustworthy: slos waived (red: none published), freshness n/a (no freshness SLO)
	m := json.patch(mesh, [
		{"op": "add", "path": ["products", hcp, "slos"], "value": []},
		{"op": "add", "path": ["products", hcp, "waivers"], "value": [waiver("trustworthy.slos", today)]},
	])
	out := decision with data.mesh as m with input as base_input
	{c.status | some c in out.report[hcp].trustworthy.checks} == {"waived", "n/a"}
	out.report[hcp].trustworthy.status == "green"
}

# --- inputs that could not be gathered ---------------------------------------------------

test_secure_pii_readers_amber_when_the_approvals_are_unavailable if {
	inp := input_with(["approvals_error"], "request store postgresql://store: connection refused")
	out := decision with data.mesh as mesh with input as inp
	reason := "approvals unavailable: request store postgresql://store: connection refused"
	found(out.checks, hcp, "secure.pii-readers") == amber(hcp, "secure.pii-readers", reason)
	found(out.checks, trials, "secure.pii-readers") == amber(trials, "secure.pii-readers", reason)
	out.report[hcp].secure.status == "amber"
}

test_trustworthy_freshness_slo_without_a_freshness_column_is_amber if {
	no_column := port(0, "curated", [dataset(0, "hcp", hcp_columns, true, null)])
	m := mesh_with(["products", hcp, "ports"], {"curated": no_column})
	out := decision with data.mesh as m with input as base_input
	reason := "products/hcp/hcp_master/product.yaml: no dataset declares freshness_column"
	found(out.checks, hcp, "trustworthy.freshness") == amber(hcp, "trustworthy.freshness", reason)
}

test_a_mesh_without_products_has_an_empty_report if {
	out := decision with data.mesh as {"domains": {}, "fitness": mesh.fitness} with input as base_input
	count(out.report) == 0
	count(out.checks) == 0
}
