"""The diff: set arithmetic on normalised grants, ordered so that the store accepts it.

Removes come first (memberships, then privileges, then the roles themselves); adds follow in
the reverse order (roles, then privileges, then memberships). Within a rank, order is the
grants' natural order, so the same inputs always give the same plan.
"""

from __future__ import annotations

from .models import Action, Change, Grant, Privilege

_ADD_RANK = {Privilege.EXISTS: 0, Privilege.USAGE: 1, Privilege.MEMBER: 3}
_REMOVE_RANK = {Privilege.MEMBER: 0, Privilege.USAGE: 2, Privilege.EXISTS: 3}


def diff(desired: frozenset[Grant], actual: frozenset[Grant]) -> tuple[Change, ...]:
    removes = sorted(actual - desired, key=lambda g: (_REMOVE_RANK.get(g.privilege, 1), g))
    adds = sorted(desired - actual, key=lambda g: (_ADD_RANK.get(g.privilege, 2), g))
    return (*(Change(Action.REMOVE, g) for g in removes),
            *(Change(Action.ADD, g) for g in adds))
