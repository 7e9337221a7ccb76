# METADATA
# title: govern.guardrails
# description: |
#   Mesh-wide guardrails. Input: {"grants": [{"product", "principal", "port", "access"}]},
#   every desired grant of the mesh. Output: the set `violations` of
#   {"rule", "product", "message"} (+ "principal" where one is concerned).
#   Any violation blocks validate, plan and apply.
package govern.guardrails

import data.govern.lib

# The products of the mesh, keyed "domain/name".
default products := {}

products := data.mesh.products

# True when principal may see product/port/access although outside the domain:
# an approval exists for exactly that product, port and access.
approved(grant) if grant.principal in lib.approved(grant.product, grant.port, grant.access)

# True when principal belongs to the product's domain team.
inside_domain(grant) if grant.principal in lib.domain_members(products[grant.product].domain)

# An input entry declares an exception when it is non-null and non-empty.
exception_declared(entry) if {
	e := entry.exception
	e != null
	not blank(e)
}

blank(e) if {
	is_string(e)
	trim_space(e) == ""
}

blank(e) if e == {}

blank(e) if e == []

# METADATA
# description: An open product must be public or internal.
violations contains {
	"rule": "open-above-internal",
	"product": id,
	"message": sprintf(
		"%s: access is open but classification is %s (open is allowed up to internal)",
		[id, p.classification],
	),
} if {
	some id, p in products
	p.access == "open"
	lib.classification_rank[p.classification] > lib.classification_rank.internal
}

# METADATA
# description: PII ports are granted outside the domain only through an approval.
violations contains {
	"rule": "pii-outside-domain",
	"product": grant.product,
	"principal": grant.principal,
	"message": sprintf(
		"%s: grant of port %s to %s (outside domain %s) on PII without an approval",
		[grant.product, grant.port, grant.principal, p.domain],
	),
} if {
	some grant in input.grants
	p := products[grant.product]
	p.ports[grant.port].pii == true
	not inside_domain(grant)
	not approved(grant)
}

# METADATA
# description: Secret products are granted outside the domain only through an approval.
violations contains {
	"rule": "secret-outside-domain",
	"product": grant.product,
	"principal": grant.principal,
	"message": sprintf(
		"%s: grant of port %s to %s (outside domain %s) on a secret product without an approval",
		[grant.product, grant.port, grant.principal, p.domain],
	),
} if {
	some grant in input.grants
	p := products[grant.product]
	p.classification == "secret"
	not inside_domain(grant)
	not approved(grant)
}

# METADATA
# description: |
#   A product is classified at least as high as each of its inputs,
#   unless the input entry declares an exception.
violations contains {
	"rule": "input-classification",
	"product": id,
	"message": sprintf(
		"%s: classified %s but its input %s is classified %s and no exception is declared",
		[id, p.classification, entry.product, source.classification],
	),
} if {
	some id, p in products
	some entry in p.inputs
	source := products[entry.product]
	lib.classification_rank[p.classification] < lib.classification_rank[source.classification]
	not exception_declared(entry)
}

# METADATA
# description: Every input names a product of the mesh.
violations contains {
	"rule": "unknown-input",
	"product": id,
	"message": sprintf("%s: input %s is not a product of the mesh", [id, entry.product]),
} if {
	some id, p in products
	some entry in p.inputs
	not entry.product in object.keys(products)
}

# METADATA
# description: Every grant names a port the product has.
violations contains {
	"rule": "unknown-port",
	"product": grant.product,
	"principal": grant.principal,
	"message": sprintf(
		"%s: grant of port %s to %s but the product has no port %s",
		[grant.product, grant.port, grant.principal, grant.port],
	),
} if {
	some grant in input.grants
	p := products[grant.product]
	not grant.port in object.keys(object.get(p, "ports", {}))
}
