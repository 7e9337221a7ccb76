# METADATA
# title: govern.lib
# description: |
#   Helpers that let a product policy read like the rule in words.
#   Works only on data.directory, data.approvals and data.mesh
#   (see docs/policy-contract.md).
package govern.lib

# METADATA
# description: Every user id in the directory.
all_users contains id if some id, _ in data.directory.users

# METADATA
# description: |
#   The subgroup graph: group name -> set of its direct subgroups.
#   Groups named only as a subgroup are added as nodes without edges.
group_graph[name] := subgroups(name) if some name in group_names

group_names contains name if some name, _ in data.directory.groups

group_names contains name if {
	some group in data.directory.groups
	some name in group.subgroups
}

subgroups(name) := {sub | some sub in data.directory.groups[name].subgroups}

# METADATA
# description: |
#   The group itself and every group nested in it, at any depth.
#   Cycle-safe (graph.reachable). Unknown group -> empty set.
groups_within(group) := graph.reachable(group_graph, {group})

# METADATA
# description: |
#   User ids in the group, directly or through nested subgroups (any depth).
#   Cycle-safe. Unknown group -> empty set. Read from the engine's index
#   (data.directory.index.members, the same result, computed once per run)
#   when it is there.
members(group) := {user | some user in data.directory.index.members[group]} if {
	data.directory.index.members[group]
} else := {user |
	some name in groups_within(group)
	some user in data.directory.groups[name].members
}

# METADATA
# scope: document
# description: True when user is a member of group, directly or through nesting.
default member_of(_, _) := false

member_of(user, group) if user in members(group)

# METADATA
# description: The value of attribute name of user (undefined when absent).
attr(user, name) := data.directory.users[user].attributes[name]

# METADATA
# scope: document
# description: |
#   True when user's attribute name equals value, or when the attribute
#   is a list containing value.
default has_attr(_, _, _) := false

has_attr(user, name, value) if attr(user, name) == value

has_attr(user, name, value) if {
	is_array(attr(user, name))
	value in attr(user, name)
}

# METADATA
# description: |
#   Users whose attribute equals value, or whose list-valued attribute
#   contains value. From data.directory.index.attributes when it is there.
users_where(name, value) := {user | some user in data.directory.index.attributes[name][value]} if {
	data.directory.index.attributes
} else := {user |
	some user in all_users
	has_attr(user, name, value)
}

# METADATA
# description: |
#   Principals holding an approval for ref (the product, "domain/name"), port
#   and access. The engine passes only approved, unexpired requests; an entry
#   carrying a status other than "approved" is ignored as well.
approved(ref, port, access) := {a.principal |
	some a in data.approvals
	a.product == ref
	a.port == port
	a.access == access
	object.get(a, "status", "approved") == "approved"
}

# METADATA
# description: |
#   The team group of a domain: data.mesh.domains[domain].team, or
#   "<domain>-team" when the domain or its team is absent.
team(domain) := t if {
	t := data.mesh.domains[domain].team
	is_string(t)
	t != ""
} else := sprintf("%s-team", [domain])

# METADATA
# description: Members (incl. nested) of the domain's team group.
domain_members(domain) := members(team(domain))

# METADATA
# description: A read grant of port to principal.
read(principal, port) := {"principal": principal, "port": port, "access": "read"}

# METADATA
# description: A write grant of port to principal.
write(principal, port) := {"principal": principal, "port": port, "access": "write"}

# METADATA
# description: Classifications ordered from least to most sensitive.
classification_rank := {
	"public": 0,
	"internal": 1,
	"confidential": 2,
	"secret": 3,
}

# METADATA
# description: ISO-3166 alpha-2 codes of the 27 EU member states.
eu_countries := {
	"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES",
	"FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
	"LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
}
