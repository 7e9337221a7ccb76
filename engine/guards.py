"""Checks on a plan before it may be applied."""

from __future__ import annotations

from .errors import GuardrailViolation, MassRevoke
from .plan import Plan
from .spec import GuardsConfig


def check_violations(violations: tuple[dict[str, str], ...]) -> None:
    if violations:
        raise GuardrailViolation(list(violations))


def check_mass_revoke(plan: Plan, guards: GuardsConfig, allow: bool) -> None:
    """Stop a plan that revokes more than ``max_revoke_fraction`` of a target's managed grants
    (and at least ``min_revokes``), unless the user allows it explicitly."""
    if allow:
        return
    for t in plan.targets:
        if t.removes >= max(guards.min_revokes, 1) and \
                t.removes > guards.max_revoke_fraction * max(t.managed_count, 1):
            raise MassRevoke(f"target {t.target}: plan revokes {t.removes} of {t.managed_count} "
                             f"managed grants (over {guards.max_revoke_fraction:.0%}); rerun "
                             "with --allow-mass-revoke if that is intended")
