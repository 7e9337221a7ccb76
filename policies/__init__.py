"""The platform Rego shipped with govern (package data: govern.lib, guardrails)."""
