package products.hcp.hcp_master_test

import data.products.hcp.hcp_master as policy

directory := {
	"users": {
		"heidi": {"id": "heidi", "attributes": {"department": "Medical", "country": "DE"}},
		"carol": {"id": "carol", "attributes": {"department": "Data", "country": "FR"}},
		"frank": {"id": "frank", "attributes": {"department": "Commercial", "country": "FR"}},
		"erin": {"id": "erin", "attributes": {"department": "Marketing", "country": "DE"}},
		"bob": {"id": "bob", "attributes": {"department": "Commercial", "country": "US"}},
	},
	"groups": {
		"hcp-stewards": {"members": ["heidi"], "subgroups": ["hcp-platform"]},
		"hcp-platform": {"members": [], "subgroups": ["hcp-data-engineers"]},
		"hcp-data-engineers": {"members": ["carol"], "subgroups": []},
		"commercial-analysts": {"members": ["bob"], "subgroups": []},
	},
}

approvals := [
	{"id": "req-1", "principal": "frank", "product": "hcp/hcp_master", "port": "curated", "access": "read"},
	{"id": "req-2", "principal": "erin", "product": "hcp/hcp_master", "port": "raw", "access": "read"},
	{"id": "req-3", "principal": "bob", "product": "hcp/other_product", "port": "curated", "access": "read"},
]

# The policy's grants evaluated against this test's directory and approvals.
granted := gs if {
	gs := policy.grants with data.directory as directory with data.approvals as approvals
}

read(user) := {"principal": user, "port": "curated", "access": "read"}

write(user) := {"principal": user, "port": "curated", "access": "write"}

test_direct_steward_reads if {
	read("heidi") in granted
	not write("heidi") in granted
}

test_nested_data_engineer_reads_and_writes if {
	# carol: hcp-data-engineers < hcp-platform < hcp-stewards
	read("carol") in granted
	write("carol") in granted
}

test_approval_grants_read_only if {
	read("frank") in granted
	not write("frank") in granted
}

test_approval_for_another_port_does_not_count if {
	not read("erin") in granted
	count({g | some g in granted; g.principal == "erin"}) == 0
}

test_approval_for_another_product_does_not_count if {
	count({g | some g in granted; g.principal == "bob"}) == 0
}

test_exact_grants if {
	granted == {read("heidi"), read("carol"), write("carol"), read("frank")}
}

test_nothing_without_directory_or_approvals if {
	policy.grants == set() with data.directory as {"users": {}, "groups": {}} with data.approvals as []
}
