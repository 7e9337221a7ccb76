package products.digital.web_engagement_test

import data.products.digital.web_engagement as policy

directory := {
	"users": {
		"alice": {"id": "alice", "attributes": {"employment_type": "employee"}},
		"bob": {"id": "bob", "attributes": {"employment_type": "employee"}},
		"erin": {"id": "erin", "attributes": {"employment_type": "contractor"}},
		"zoe": {"id": "zoe", "attributes": {}},
		"max": {"id": "max", "attributes": {"employment_type": "intern"}},
	},
	"groups": {"digital-team": {"members": ["erin", "zoe"], "subgroups": []}},
}

approvals := [
	{"id": "req-8", "principal": "erin", "product": "digital/web_engagement", "port": "raw", "access": "read"},
	{"id": "req-9", "principal": "zoe", "product": "digital/web_engagement", "port": "events", "access": "read"},
]

# The policy's grants evaluated against this test's directory and approvals.
granted := gs if {
	gs := policy.grants with data.directory as directory with data.approvals as approvals
}

read(user) := {"principal": user, "port": "events", "access": "read"}

test_employees_read if {
	read("alice") in granted
	read("bob") in granted
}

test_contractor_denied if {
	not read("erin") in granted
}

test_missing_or_other_employment_type_denied if {
	not read("zoe") in granted
	not read("max") in granted
}

test_approvals_and_groups_do_not_count if {
	# the policy grants on employment_type only
	count({g | some g in granted; g.principal in {"erin", "zoe"}}) == 0
}

test_exact_grants if {
	granted == {read("alice"), read("bob")}
}
