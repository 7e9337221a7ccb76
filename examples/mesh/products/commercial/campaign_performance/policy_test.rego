package products.commercial.campaign_performance_test

import data.products.commercial.campaign_performance as policy

directory := {
	"users": {
		"alice": {"id": "alice", "attributes": {"department": "Commercial", "country": "DE", "employment_type": "employee"}},
		"bob": {"id": "bob", "attributes": {"department": "Commercial", "country": "US", "employment_type": "employee"}},
		"frank": {"id": "frank", "attributes": {"department": "Commercial", "country": "FR", "employment_type": "employee"}},
		"ulla": {"id": "ulla", "attributes": {"department": "Commercial", "country": "US", "employment_type": "employee"}},
		"erin": {"id": "erin", "attributes": {"department": "Marketing", "country": "DE", "employment_type": "contractor"}},
		"gus": {"id": "gus", "attributes": {"department": "Commercial", "country": "CH"}},
		"nina": {"id": "nina", "attributes": {"department": ["Commercial", "Medical"], "country": "IT"}},
		"omar": {"id": "omar", "attributes": {"department": "Commercial"}},
	},
	"groups": {
		"commercial-analysts": {"members": ["bob"], "subgroups": ["campaign-managers"]},
		"campaign-managers": {"members": ["alice"], "subgroups": []},
	},
}

approvals := [{
	"id": "req-7", "principal": "ulla", "product": "commercial/campaign_performance",
	"port": "raw", "access": "read",
}]

# The policy's grants evaluated against this test's directory and approvals.
granted := gs if {
	gs := policy.grants with data.directory as directory with data.approvals as approvals
}

read(user) := {"principal": user, "port": "reporting", "access": "read"}

test_direct_analyst_reads if {
	# bob is outside the EU but a direct member of commercial-analysts
	read("bob") in granted
}

test_nested_analyst_reads if {
	# alice: campaign-managers < commercial-analysts
	read("alice") in granted
}

test_commercial_in_eu_reads if {
	read("frank") in granted
}

test_list_valued_department_matches if {
	read("nina") in granted
}

test_commercial_outside_eu_denied if {
	not read("gus") in granted
	not read("omar") in granted
}

test_other_department_in_eu_denied if {
	not read("erin") in granted
}

test_approval_for_another_port_does_not_count if {
	# this policy grants nothing through approvals, least of all for another port
	not read("ulla") in granted
}

test_exact_grants if {
	granted == {read("alice"), read("bob"), read("frank"), read("nina")}
}
