# medical/field_inquiries: nobody reads by role; every reader has an approved request.
package products.medical.field_inquiries

import data.govern.lib

# Only approved access requests grant access.
grants contains lib.read(user, "inquiries") if some user in lib.approved("medical/field_inquiries", "inquiries", "read")
