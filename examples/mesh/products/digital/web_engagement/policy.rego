# digital/web_engagement — web engagement events (public, open).
package products.digital.web_engagement

import data.govern.lib

# Every employee reads the events port.
grants contains lib.read(user, "events") if some user in lib.users_where("employment_type", "employee")
