package products.clinical.trial_results_test

import data.products.clinical.trial_results as policy

directory := {
	"users": {
		"dave": {"id": "dave", "attributes": {"department": "Clinical", "country": "US"}},
		"grace": {"id": "grace", "attributes": {"department": "Research", "country": "DE"}},
		"ivy": {"id": "ivy", "attributes": {"department": "Clinical", "country": "FR"}},
		"paul": {"id": "paul", "attributes": {"department": "Clinical", "country": "DE"}},
		"bob": {"id": "bob", "attributes": {"department": "Commercial", "country": "US"}},
		"frank": {"id": "frank", "attributes": {"department": "Commercial", "country": "FR"}},
	},
	"groups": {
		"clinical-investigators": {"members": ["dave", "grace"], "subgroups": ["site-investigators"]},
		"site-investigators": {"members": ["ivy"], "subgroups": []},
		"clinical-team": {"members": ["paul"], "subgroups": ["clinical-investigators"]},
	},
}

approvals := [
	{"id": "req-3", "principal": "bob", "product": "clinical/trial_results", "port": "results", "access": "read"},
	{"id": "req-4", "principal": "frank", "product": "clinical/trial_results", "port": "raw", "access": "read"},
	{"id": "req-5", "principal": "frank", "product": "clinical/other", "port": "results", "access": "read"},
]

# The policy's grants evaluated against this test's directory and approvals.
granted := gs if {
	gs := policy.grants with data.directory as directory with data.approvals as approvals
}

read(user) := {"principal": user, "port": "results", "access": "read"}

test_clinical_investigator_reads if {
	read("dave") in granted
}

test_nested_clinical_investigator_reads if {
	# ivy: site-investigators < clinical-investigators
	read("ivy") in granted
}

test_investigator_from_other_department_denied if {
	not read("grace") in granted
}

test_clinical_department_outside_group_denied if {
	# paul is Clinical and in clinical-team, but not an investigator
	not read("paul") in granted
}

test_approval_grants_read if {
	read("bob") in granted
}

test_approval_for_another_port_or_product_does_not_count if {
	count({g | some g in granted; g.principal == "frank"}) == 0
}

test_no_approval_no_grant if {
	gs := policy.grants with data.directory as directory with data.approvals as []
	not read("bob") in gs
}

test_exact_grants if {
	granted == {read("dave"), read("ivy"), read("bob")}
}
