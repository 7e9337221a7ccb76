package govern.guardrails_test

import data.govern.guardrails

directory := {
	"users": {
		"carol": {"id": "carol", "attributes": {}},
		"heidi": {"id": "heidi", "attributes": {}},
		"dave": {"id": "dave", "attributes": {}},
		"bob": {"id": "bob", "attributes": {}},
		"frank": {"id": "frank", "attributes": {}},
	},
	"groups": {
		"hcp-team": {"members": [], "subgroups": ["hcp-stewards"]},
		"hcp-stewards": {"members": ["heidi"], "subgroups": ["hcp-data-engineers"]},
		"hcp-data-engineers": {"members": ["carol"], "subgroups": []},
		"clinical-team": {"members": ["dave"], "subgroups": []},
	},
}

product_spec(domain, name, classification, access, inputs, ports) := {
	"domain": domain, "name": name, "owner": sprintf("%s-team", [domain]),
	"classification": classification, "access": access, "type": "source-aligned",
	"contains_pii": false, "inputs": inputs, "ports": ports,
}

# A mesh that passes every guardrail.
mesh := {
	"domains": {"hcp": {"team": "hcp-team"}, "clinical": {}, "commercial": {}, "digital": {}},
	"products": {
		"hcp/hcp_master": product_spec("hcp", "hcp_master", "confidential", "approval-required", [], {
			"curated": {"target": "warehouse", "pii": true},
			"summary": {"target": "warehouse", "pii": false},
		}),
		"clinical/trial_results": product_spec(
			"clinical", "trial_results", "secret", "approval-required", [],
			{"results": {"target": "warehouse", "pii": false}},
		),
		"commercial/campaign_performance": product_spec(
			"commercial", "campaign_performance", "internal", "approval-required",
			[{"product": "hcp/hcp_master", "exception": "aggregated, no PII"}],
			{"reporting": {"target": "warehouse", "pii": false}},
		),
		"digital/web_engagement": product_spec(
			"digital", "web_engagement", "public", "open",
			[{"product": "digital/web_engagement_raw", "exception": null}],
			{"events": {"target": "warehouse", "pii": false}},
		),
		"digital/web_engagement_raw": product_spec(
			"digital", "web_engagement_raw", "public", "open", [],
			{"raw": {"target": "lake"}},
		),
	},
}

approvals := [
	{"id": "req-1", "principal": "frank", "product": "hcp/hcp_master", "port": "curated", "access": "read"},
	{"id": "req-9", "principal": "bob", "product": "clinical/trial_results", "port": "results", "access": "read"},
]

grant(ref, principal, port, access) := {"product": ref, "principal": principal, "port": port, "access": access}

# The mesh with one product's field replaced.
mesh_with(id, field, value) := json.patch(mesh, [{"op": "add", "path": ["products", id, field], "value": value}])

violations_of(rule, vs) := {v | some v in vs; v.rule == rule}

# --- the clean mesh ----------------------------------------------------------

test_clean_mesh_no_violations if {
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as approvals
		with input as {"grants": [
			grant("hcp/hcp_master", "carol", "curated", "write"),
			grant("hcp/hcp_master", "heidi", "curated", "read"),
			grant("hcp/hcp_master", "frank", "curated", "read"),
			grant("hcp/hcp_master", "bob", "summary", "read"),
			grant("clinical/trial_results", "dave", "results", "read"),
			grant("clinical/trial_results", "bob", "results", "read"),
			grant("digital/web_engagement", "bob", "events", "read"),
		]}
	vs == set()
}

test_no_input_no_mesh if {
	guardrails.violations == set() with data.mesh as {} with input as {}
}

# --- open-above-internal -----------------------------------------------------

test_open_above_internal_fires_for_confidential_and_secret if {
	m1 := mesh_with("hcp/hcp_master", "access", "open")
	vs1 := guardrails.violations with data.mesh as m1 with input as {"grants": []}
	vs1 == {{
		"rule": "open-above-internal", "product": "hcp/hcp_master",
		"message": "hcp/hcp_master: access is open but classification is confidential (open is allowed up to internal)",
	}}

	m2 := mesh_with("clinical/trial_results", "access", "open")
	vs2 := guardrails.violations with data.mesh as m2 with input as {"grants": []}
	{v.product | some v in violations_of("open-above-internal", vs2)} == {"clinical/trial_results"}
}

test_open_internal_and_public_allowed if {
	m := mesh_with("commercial/campaign_performance", "access", "open")
	vs := guardrails.violations with data.mesh as m with input as {"grants": []}
	violations_of("open-above-internal", vs) == set()
}

# --- pii-outside-domain ------------------------------------------------------

test_pii_outside_domain_fires if {
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as approvals
		with input as {"grants": [grant("hcp/hcp_master", "bob", "curated", "read")]}
	vs == {{
		"rule": "pii-outside-domain", "product": "hcp/hcp_master", "principal": "bob",
		"message": "hcp/hcp_master: grant of port curated to bob (outside domain hcp) on PII without an approval",
	}}
}

test_pii_outside_domain_approval_for_other_access_does_not_count if {
	# frank's approval is for read, not write
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as approvals
		with input as {"grants": [grant("hcp/hcp_master", "frank", "curated", "write")]}
	{v.principal | some v in violations_of("pii-outside-domain", vs)} == {"frank"}
}

test_pii_outside_domain_approval_for_other_port_does_not_count if {
	m := json.patch(mesh, [{"op": "add", "path": ["products", "hcp/hcp_master", "ports", "raw"], "value": {"pii": true}}])
	vs := guardrails.violations with data.mesh as m
		with data.directory as directory
		with data.approvals as approvals
		with input as {"grants": [grant("hcp/hcp_master", "frank", "raw", "read")]}
	{v.principal | some v in violations_of("pii-outside-domain", vs)} == {"frank"}
}

test_pii_allowed_with_approval if {
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as approvals
		with input as {"grants": [grant("hcp/hcp_master", "frank", "curated", "read")]}
	vs == set()
}

test_pii_allowed_inside_domain_nested if {
	# carol is in hcp-data-engineers < hcp-stewards < hcp-team
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as []
		with input as {"grants": [grant("hcp/hcp_master", "carol", "curated", "write")]}
	vs == set()
}

test_non_pii_port_allowed_outside_domain if {
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as []
		with input as {"grants": [grant("hcp/hcp_master", "bob", "summary", "read")]}
	vs == set()
}

# --- secret-outside-domain ---------------------------------------------------

test_secret_outside_domain_fires if {
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as []
		with input as {"grants": [grant("clinical/trial_results", "bob", "results", "read")]}
	vs == {{
		"rule": "secret-outside-domain", "product": "clinical/trial_results", "principal": "bob",
		"message": concat(" ", [
			"clinical/trial_results: grant of port results to bob (outside domain clinical)",
			"on a secret product without an approval",
		]),
	}}
}

test_secret_allowed_with_approval if {
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as approvals
		with input as {"grants": [grant("clinical/trial_results", "bob", "results", "read")]}
	vs == set()
}

test_secret_allowed_inside_default_team if {
	# clinical names no team: clinical-team is used
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with data.approvals as []
		with input as {"grants": [grant("clinical/trial_results", "dave", "results", "read")]}
	vs == set()
}

# --- input-classification ----------------------------------------------------

test_input_classification_fires_without_exception if {
	m := mesh_with("commercial/campaign_performance", "inputs", [
		{"product": "hcp/hcp_master", "exception": null},
		{"product": "clinical/trial_results"},
		{"product": "digital/web_engagement", "exception": null},
	])
	vs := guardrails.violations with data.mesh as m with input as {"grants": []}
	vs == {
		{
			"rule": "input-classification", "product": "commercial/campaign_performance",
			"message": concat(" ", [
				"commercial/campaign_performance: classified internal but its input hcp/hcp_master",
				"is classified confidential and no exception is declared",
			]),
		},
		{
			"rule": "input-classification", "product": "commercial/campaign_performance",
			"message": concat(" ", [
				"commercial/campaign_performance: classified internal but its input clinical/trial_results",
				"is classified secret and no exception is declared",
			]),
		},
	}
}

test_input_classification_blank_exception_does_not_count if {
	m := mesh_with("commercial/campaign_performance", "inputs", [{"product": "hcp/hcp_master", "exception": "  "}])
	vs := guardrails.violations with data.mesh as m with input as {"grants": []}
	count(violations_of("input-classification", vs)) == 1
}

test_input_classification_allowed_with_exception if {
	# the clean mesh declares an exception on campaign_performance's confidential input
	vs := guardrails.violations with data.mesh as mesh with input as {"grants": []}
	violations_of("input-classification", vs) == set()
}

test_input_classification_allowed_same_or_lower if {
	m := mesh_with("clinical/trial_results", "inputs", [
		{"product": "hcp/hcp_master", "exception": null},
		{"product": "digital/web_engagement", "exception": null},
	])
	vs := guardrails.violations with data.mesh as m with input as {"grants": []}
	vs == set()
}

# --- unknown-input -----------------------------------------------------------

test_unknown_input_fires if {
	m := mesh_with("commercial/campaign_performance", "inputs", [{"product": "sales/ghost", "exception": "whatever"}])
	vs := guardrails.violations with data.mesh as m with input as {"grants": []}
	vs == {{
		"rule": "unknown-input", "product": "commercial/campaign_performance",
		"message": "commercial/campaign_performance: input sales/ghost is not a product of the mesh",
	}}
}

test_unknown_input_not_fired_for_known_input if {
	vs := guardrails.violations with data.mesh as mesh with input as {"grants": []}
	violations_of("unknown-input", vs) == set()
}

# --- unknown-port ------------------------------------------------------------

test_unknown_port_fires if {
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with input as {"grants": [grant("digital/web_engagement", "bob", "clicks", "read")]}
	vs == {{
		"rule": "unknown-port", "product": "digital/web_engagement", "principal": "bob",
		"message": "digital/web_engagement: grant of port clicks to bob but the product has no port clicks",
	}}
}

test_unknown_port_not_fired_for_known_port if {
	vs := guardrails.violations with data.mesh as mesh
		with data.directory as directory
		with input as {"grants": [grant("digital/web_engagement", "bob", "events", "read")]}
	vs == set()
}

test_input_classification_empty_exception_does_not_count if {
	every e in [{}, [], ""] {
		m := mesh_with("commercial/campaign_performance", "inputs", [{"product": "hcp/hcp_master", "exception": e}])
		vs := guardrails.violations with data.mesh as m with input as {"grants": []}
		count(violations_of("input-classification", vs)) == 1
	}
}
