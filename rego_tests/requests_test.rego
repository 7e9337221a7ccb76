package govern.requests_test

import data.govern.requests

directory := {
	"users": {
		"dave": {"id": "dave", "attributes": {}},
		"ivy": {"id": "ivy", "attributes": {}},
		"heidi": {"id": "heidi", "attributes": {}},
		"sam": {"id": "sam", "attributes": {}},
		"bob": {"id": "bob", "attributes": {}},
		"alice": {"id": "alice", "attributes": {}},
	},
	"groups": {
		"clinical-investigators": {"members": ["dave"], "subgroups": ["site-investigators"]},
		"site-investigators": {"members": ["ivy"], "subgroups": []},
		"safety-board": {"members": ["sam"], "subgroups": []},
	},
}

mesh := {"products": {
	"clinical/trial_results": {
		"domain": "clinical", "name": "trial_results",
		"owner": "clinical-investigators", "stewards": ["heidi", "safety-board"],
	},
	"digital/web_engagement": {"domain": "digital", "name": "web_engagement", "owner": "alice"},
}}

request(requester) := {
	"id": sprintf("req-%s", [requester]), "requester": requester,
	"product": "clinical/trial_results", "port": "results", "access": "read", "status": "pending",
}

act(action, actor, req) := {"action": action, "actor": actor, "request": req}

test_owner_group_member_approves if {
	requests.allow with input as act("approve", "dave", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_nested_owner_group_member_approves if {
	requests.allow with input as act("approve", "ivy", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_steward_user_approves if {
	requests.allow with input as act("approve", "heidi", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_steward_group_member_denies if {
	requests.allow with input as act("deny", "sam", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_owner_user_approves if {
	req := object.union(request("bob"), {"product": "digital/web_engagement"})
	requests.allow with input as act("approve", "alice", req)
		with data.directory as directory
		with data.mesh as mesh
}

test_non_owner_cannot_approve if {
	not requests.allow with input as act("approve", "alice", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
	reasons := requests.reasons with input as act("approve", "alice", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
	reasons == {concat("", [
		"alice may not approve requests for clinical/trial_results: only its owner and ",
		"stewards (clinical-investigators, heidi, safety-board) may",
	])}
}

test_self_approval_is_refused_even_for_an_owner if {
	not requests.allow with input as act("approve", "dave", request("dave"))
		with data.directory as directory
		with data.mesh as mesh
	not requests.allow with input as act("deny", "dave", request("dave"))
		with data.directory as directory
		with data.mesh as mesh
	reasons := requests.reasons with input as act("approve", "dave", request("dave"))
		with data.directory as directory
		with data.mesh as mesh
	reasons == {"a requester can never approve or deny their own request"}
}

test_requester_cannot_approve if {
	not requests.allow with input as act("approve", "bob", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_requester_withdraws_own_request if {
	requests.allow with input as act("revoke", "bob", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_owner_revokes if {
	requests.allow with input as act("revoke", "ivy", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_stranger_cannot_revoke if {
	not requests.allow with input as act("revoke", "alice", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_create_in_own_name if {
	requests.allow with input as act("create", "bob", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
}

test_create_for_someone_else_refused if {
	not requests.allow with input as act("create", "bob", request("alice"))
		with data.directory as directory
		with data.mesh as mesh
	reasons := requests.reasons with input as act("create", "bob", request("alice"))
		with data.directory as directory
		with data.mesh as mesh
	reasons == {"bob may only create their own requests"}
}

test_actor_outside_directory_refused if {
	not requests.allow with input as act("create", "mallory", request("mallory"))
		with data.directory as directory
		with data.mesh as mesh
	reasons := requests.reasons with input as act("create", "mallory", request("mallory"))
		with data.directory as directory
		with data.mesh as mesh
	reasons == {"mallory is not a directory user"}
}

# An owner that names nobody in the directory: no directory user approves, each one refused
# because they are not the owner (not because they are unknown).
test_owner_name_that_is_neither_user_nor_group_grants_nothing if {
	req := object.union(request("bob"), {"product": "digital/web_engagement"})
	m := {"products": {"digital/web_engagement": {"owner": "nobody-at-all"}}}
	every user in object.keys(directory.users) - {"bob"} {
		not requests.allow with input as act("approve", user, req)
			with data.directory as directory
			with data.mesh as m
		reasons := requests.reasons with input as act("approve", user, req)
			with data.directory as directory
			with data.mesh as m
		only := "only its owner and stewards (nobody-at-all) may"
		reasons == {sprintf("%s may not approve requests for digital/web_engagement: %s", [user, only])}
	}
}

test_unknown_product_refused if {
	req := object.union(request("bob"), {"product": "x/y"})
	not requests.allow with input as act("approve", "dave", req)
		with data.directory as directory
		with data.mesh as mesh
	reasons := requests.reasons with input as act("approve", "dave", req)
		with data.directory as directory
		with data.mesh as mesh
	reasons == {"no product x/y in the mesh"}
}

test_unknown_action_refused if {
	not requests.allow with input as act("merge", "dave", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
	reasons := requests.reasons with input as act("merge", "dave", request("bob"))
		with data.directory as directory
		with data.mesh as mesh
	reasons == {"unknown action merge"}
}

test_allow_is_false_not_undefined_without_input if {
	requests.allow == false with data.directory as directory with data.mesh as mesh
}

test_approvable_lists_pending_requests_of_others if {
	reqs := [
		request("bob"),
		request("dave"),
		object.union(request("alice"), {"status": "approved"}),
		object.union(request("sam"), {"product": "digital/web_engagement"}),
	]
	ids := requests.approvable with input as {"actor": "dave", "requests": reqs}
		with data.directory as directory
		with data.mesh as mesh
	ids == {"req-bob"}
}
