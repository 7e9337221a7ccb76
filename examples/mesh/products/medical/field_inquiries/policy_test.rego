package products.medical.field_inquiries_test

import data.products.medical.field_inquiries as policy

directory := {
	"users": {
		"bob": {"id": "bob", "attributes": {"department": "Commercial"}, "groups": []},
		"heidi": {"id": "heidi", "attributes": {"department": "Medical"}, "groups": ["medical-team"]},
	},
	"groups": {"medical-team": {"members": ["heidi"], "subgroups": []}},
}

approval(principal, port) := {
	"id": "req-9", "principal": principal, "product": "medical/field_inquiries",
	"port": port, "access": "read", "expires": "2099-12-31",
}

test_an_approval_grants if {
	grants := policy.grants with data.directory as directory with data.approvals as [approval("bob", "inquiries")]
	grants == {{"principal": "bob", "port": "inquiries", "access": "read"}}
}

test_no_approval_no_access_not_even_for_the_owner if {
	grants := policy.grants with data.directory as directory with data.approvals as []
	grants == set()
}

test_an_approval_for_another_port_does_not_count if {
	grants := policy.grants with data.directory as directory with data.approvals as [approval("bob", "other")]
	grants == set()
}
