# clinical/trial_results — clinical trial results (secret).
package products.clinical.trial_results

import data.govern.lib

# Clinical investigators from the Clinical department read the results port.
grants contains lib.read(user, "results") if {
	some user in lib.members("clinical-investigators")
	lib.has_attr(user, "department", "Clinical")
}

# Anyone with an approved request reads the results port.
grants contains lib.read(user, "results") if some user in lib.approved("clinical/trial_results", "results", "read")
