# hcp/hcp_master — curated HCP master data (PII: email).
package products.hcp.hcp_master

import data.govern.lib

# HCP stewards (including nested groups) read the curated port.
grants contains lib.read(user, "curated") if some user in lib.members("hcp-stewards")

# HCP data engineers write the curated port.
grants contains lib.write(user, "curated") if some user in lib.members("hcp-data-engineers")

# Anyone with an approved request reads the curated port.
grants contains lib.read(user, "curated") if some user in lib.approved("hcp/hcp_master", "curated", "read")
