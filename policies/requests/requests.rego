# METADATA
# title: govern.requests
# description: |
#   Who may create, approve, deny and revoke an access request.
#   Input: {"action": "create" | "approve" | "deny" | "revoke", "actor": <user id>,
#   "request": {"requester", "product", "port", "access", "status", ...}}.
#   Decided over data.mesh (a product's owner and stewards) and data.directory, both
#   uploaded by the engine. Default: the product's owner and stewards (users, or groups
#   incl. nested ones) approve, deny and revoke; a requester creates their own requests
#   and may withdraw (revoke) them; nobody approves or denies their own request.
package govern.requests

import data.govern.lib

# METADATA
# scope: document
# description: True when input.actor may take input.action on input.request.
default allow := false

allow if may(input.action, input.actor, input.request)

# METADATA
# scope: document
# description: |
#   Why input.actor may not take input.action (the messages of a refusal).
#   Empty when allowed.
reasons contains "a requester can never approve or deny their own request" if {
	self_decision(input.action, input.actor, input.request)
}

reasons contains sprintf("%s is not a directory user", [input.actor]) if {
	not input.actor in lib.all_users
}

reasons contains refusal(input.action, input.actor, input.request) if {
	not permitted(input.action, input.actor, input.request)
}

# METADATA
# description: |
#   Input {"actor", "requests": [request, ...]}: the ids of the pending requests
#   the actor may approve (for `govern request list --to-approve` and the web page).
approvable contains r.id if {
	some r in input.requests
	r.status == "pending"
	may("approve", input.actor, r)
}

# METADATA
# description: True when actor may take action on request.
may(action, actor, request) if {
	actor in lib.all_users
	not self_decision(action, actor, request)
	permitted(action, actor, request)
}

# METADATA
# description: An approval or denial by the requester of their own request.
self_decision(action, actor, request) if {
	action in {"approve", "deny"}
	actor == request.requester
}

# Anyone in the directory asks for access in their own name.
permitted("create", actor, request) if actor == request.requester

permitted(action, actor, request) if {
	action in {"approve", "deny", "revoke"}
	approver(actor, request.product)
}

# A requester may withdraw their own request or give up an approval.
permitted("revoke", actor, request) if actor == request.requester

# METADATA
# description: The owner and stewards of product ref, as named in its product.yaml.
approvers(ref) := {data.mesh.products[ref].owner} | {s | some s in object.get(data.mesh.products[ref], "stewards", [])}

# METADATA
# description: True when user is the product's owner or a steward, or in such a group.
approver(user, ref) if {
	some name in approvers(ref)
	names(name, user)
}

# A name in product.yaml designates the user of that id, or the members of that group.
names(name, user) if {
	name == user
	user in lib.all_users
}

names(name, user) if lib.member_of(user, name)

refusal(action, actor, request) := sprintf("no product %s in the mesh", [request.product]) if {
	action != "create"
	not data.mesh.products[request.product]
} else := sprintf("%s may only %s their own requests", [actor, action]) if {
	action == "create"
} else := sprintf("%s may not %s requests for %s: only its owner and stewards (%s) may", [
	actor, action, request.product,
	concat(", ", sort(approvers(request.product))),
]) if {
	action in {"approve", "deny", "revoke"}
} else := sprintf("unknown action %v", [action])
