"""opa test suites of the platform Rego (package data)."""
