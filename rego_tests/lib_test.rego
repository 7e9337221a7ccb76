package govern.lib_test

import data.govern.lib

directory := {
	"users": {
		"alice": {
			"id": "alice",
			"attributes": {"department": "Commercial", "country": "DE", "roles": ["analyst", "steward"]},
		},
		"bob": {"id": "bob", "attributes": {"department": "Commercial", "country": "US", "roles": "analyst"}},
		"carol": {"id": "carol", "attributes": {"department": "Data", "country": "FR"}},
		"dave": {"id": "dave", "attributes": {"department": "Clinical"}},
		"erin": {"id": "erin", "attributes": {}},
	},
	"groups": {
		# 3 levels: top > middle > bottom
		"top": {"members": ["alice"], "subgroups": ["middle"]},
		"middle": {"members": ["bob"], "subgroups": ["bottom"]},
		"bottom": {"members": ["carol"], "subgroups": []},
		# cycle: ring-a > ring-b > ring-c > ring-a
		"ring-a": {"members": ["alice"], "subgroups": ["ring-b"]},
		"ring-b": {"members": ["bob"], "subgroups": ["ring-c"]},
		"ring-c": {"members": ["dave"], "subgroups": ["ring-a"]},
		# self-cycle, a subgroup that does not exist, a group without keys
		"self": {"members": ["erin"], "subgroups": ["self", "ghost"]},
		"bare": {},
		"clinical-team": {"members": ["dave"], "subgroups": []},
		"hcp-crew": {"members": ["carol"], "subgroups": ["bottom"]},
	},
}

approvals := [
	{"id": "r1", "principal": "frank", "product": "hcp/hcp_master", "port": "curated", "access": "read"},
	{"id": "r2", "principal": "erin", "product": "hcp/hcp_master", "port": "raw", "access": "read"},
	{"id": "r3", "principal": "gina", "product": "hcp/hcp_master", "port": "curated", "access": "write"},
	{"id": "r4", "principal": "hank", "product": "hcp/other", "port": "curated", "access": "read"},
	{
		"id": "r5", "principal": "ivan", "product": "hcp/hcp_master", "port": "curated", "access": "read",
		"status": "approved",
	},
	{
		"id": "r6", "principal": "jane", "product": "hcp/hcp_master", "port": "curated", "access": "read",
		"status": "revoked",
	},
]

# --- members / member_of -----------------------------------------------------

test_members_nested_three_levels if {
	lib.members("top") == {"alice", "bob", "carol"} with data.directory as directory
	lib.members("middle") == {"bob", "carol"} with data.directory as directory
	lib.members("bottom") == {"carol"} with data.directory as directory
}

test_members_cycle_terminates_with_union if {
	lib.members("ring-a") == {"alice", "bob", "dave"} with data.directory as directory
	lib.members("ring-b") == {"alice", "bob", "dave"} with data.directory as directory
	lib.members("ring-c") == {"alice", "bob", "dave"} with data.directory as directory
}

test_members_self_cycle_and_missing_subgroup if {
	lib.members("self") == {"erin"} with data.directory as directory
}

test_members_unknown_group_is_empty if {
	lib.members("no-such-group") == set() with data.directory as directory
	lib.members("bare") == set() with data.directory as directory
}

test_members_empty_directory if {
	lib.members("top") == set() with data.directory as {}
}

test_member_of_nested if {
	lib.member_of("carol", "top") with data.directory as directory
	lib.member_of("alice", "top") with data.directory as directory
}

test_member_of_false_when_not_member if {
	lib.member_of("alice", "bottom") == false with data.directory as directory
	lib.member_of("dave", "top") == false with data.directory as directory
	lib.member_of("alice", "no-such-group") == false with data.directory as directory
	lib.member_of("nobody", "top") == false with data.directory as directory
}

# --- attributes ----------------------------------------------------------------

test_all_users if {
	lib.all_users == {"alice", "bob", "carol", "dave", "erin"} with data.directory as directory
}

test_attr if {
	lib.attr("alice", "country") == "DE" with data.directory as directory
	lib.attr("alice", "roles") == ["analyst", "steward"] with data.directory as directory
}

test_attr_absent_is_undefined if {
	not lib.attr("erin", "country") with data.directory as directory
	not lib.attr("nobody", "country") with data.directory as directory
}

test_users_where_string_attribute if {
	lib.users_where("department", "Commercial") == {"alice", "bob"} with data.directory as directory
	lib.users_where("department", "Nope") == set() with data.directory as directory
}

test_users_where_list_valued_attribute if {
	lib.users_where("roles", "analyst") == {"alice", "bob"} with data.directory as directory
	lib.users_where("roles", "steward") == {"alice"} with data.directory as directory
}

test_has_attr if {
	lib.has_attr("alice", "roles", "steward") with data.directory as directory
	lib.has_attr("bob", "country", "US") with data.directory as directory
	lib.has_attr("bob", "roles", "steward") == false with data.directory as directory
	lib.has_attr("erin", "country", "US") == false with data.directory as directory
}

# --- approvals -----------------------------------------------------------------

test_approved_filters_product_port_access if {
	lib.approved("hcp/hcp_master", "curated", "read") == {"frank", "ivan"} with data.approvals as approvals
	lib.approved("hcp/hcp_master", "raw", "read") == {"erin"} with data.approvals as approvals
	lib.approved("hcp/hcp_master", "curated", "write") == {"gina"} with data.approvals as approvals
	lib.approved("hcp/other", "curated", "read") == {"hank"} with data.approvals as approvals
	lib.approved("hcp/other", "raw", "read") == set() with data.approvals as approvals
}

test_approved_ignores_non_approved_status if {
	not "jane" in lib.approved("hcp/hcp_master", "curated", "read") with data.approvals as approvals
}

test_approved_none if {
	lib.approved("hcp/hcp_master", "curated", "read") == set() with data.approvals as []
}

# --- domains -------------------------------------------------------------------

test_domain_members_named_team if {
	lib.domain_members("hcp") == {"carol"} with data.directory as directory
		with data.mesh as {"domains": {"hcp": {"team": "hcp-crew"}}}
}

test_domain_members_default_team if {
	# no team named: falls back to "<domain>-team"
	lib.domain_members("clinical") == {"dave"} with data.directory as directory
		with data.mesh as {"domains": {"clinical": {}}}

	# domain absent from the mesh
	lib.domain_members("clinical") == {"dave"} with data.directory as directory
		with data.mesh as {"domains": {}}
	lib.domain_members("clinical") == {"dave"} with data.directory as directory
		with data.mesh as {}
}

test_domain_members_unknown_team_is_empty if {
	lib.domain_members("nowhere") == set() with data.directory as directory
		with data.mesh as {"domains": {}}
}

# --- constructors and constants --------------------------------------------------

test_grant_constructors if {
	lib.read("alice", "curated") == {"principal": "alice", "port": "curated", "access": "read"}
	lib.write("bob", "raw") == {"principal": "bob", "port": "raw", "access": "write"}
}

test_classification_rank_order if {
	lib.classification_rank.public < lib.classification_rank.internal
	lib.classification_rank.internal < lib.classification_rank.confidential
	lib.classification_rank.confidential < lib.classification_rank.secret
	lib.classification_rank == {"public": 0, "internal": 1, "confidential": 2, "secret": 3}
}

test_eu_countries if {
	count(lib.eu_countries) == 27
	"DE" in lib.eu_countries
	"FR" in lib.eu_countries
	not "US" in lib.eu_countries
	not "GB" in lib.eu_countries
	not "CH" in lib.eu_countries
}

# --- the engine's index (data.directory.index, identity/base.py Snapshot.index) ---------

indexed := object.union(directory, {"index": {
	"members": {"top": ["alice", "bob", "carol"], "bottom": ["carol"]},
	"attributes": {"department": {"Commercial": ["alice", "bob"]}, "roles": {"analyst": ["alice", "bob"]}},
}})

test_members_read_from_the_index if {
	lib.members("top") == {"alice", "bob", "carol"} with data.directory as indexed

	# what the index says is what counts, whatever the groups hold
	emptied := json.patch(indexed, [{"op": "replace", "path": "/groups/bottom/members", "value": []}])
	lib.members("bottom") == {"carol"} with data.directory as emptied
}

test_members_of_a_group_the_index_lacks_is_computed if {
	lib.members("middle") == {"bob", "carol"} with data.directory as indexed
}

test_users_where_read_from_the_index if {
	lib.users_where("department", "Commercial") == {"alice", "bob"} with data.directory as indexed
	lib.users_where("department", "Data") == set() with data.directory as indexed
	lib.users_where("roles", "analyst") == {"alice", "bob"} with data.directory as indexed
}
