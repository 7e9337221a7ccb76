# commercial/campaign_performance — campaign KPIs for the commercial organisation.
package products.commercial.campaign_performance

import data.govern.lib

# Commercial analysts (including nested groups) read the reporting port.
grants contains lib.read(user, "reporting") if some user in lib.members("commercial-analysts")

# Anyone in the Commercial department based in an EU country reads the reporting port.
grants contains lib.read(user, "reporting") if {
	some user in lib.users_where("department", "Commercial")
	lib.attr(user, "country") in lib.eu_countries
}
