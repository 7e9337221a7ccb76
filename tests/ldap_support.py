"""Populate a real slapd from a directory dict (the YAML file format), over LDAP."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from govern.identity import ldap as _ldap  # noqa: F401  (installs the one warning filter)

import ldap3  # noqa: E402
from ldap3.utils.dn import escape_rdn  # noqa: E402

import slapdserver  # noqa: E402

ATTRIBUTE_MAP = {"department": "departmentNumber", "country": "c",
                 "employment_type": "employeeType"}


@dataclass
class Tree:
    """One test's own subtree: ou=people and ou=contractors for users, ou=groups."""

    url: str
    base: str

    @contextmanager
    def admin(self) -> Iterator[ldap3.Connection]:
        # not ldap3's own `with`: it leaves a connection bound before entering open
        conn = ldap3.Connection(self.url, slapdserver.ADMIN_DN, slapdserver.ADMIN_PW,
                                auto_bind=True, raise_exceptions=True)
        try:
            yield conn
        finally:
            conn.unbind()

    def user_dn(self, uid: str, ou: str = "people") -> str:
        return f"uid={escape_rdn(uid)},ou={ou},{self.base}"

    def group_dn(self, name: str) -> str:
        return f"cn={escape_rdn(name)},ou=groups,{self.base}"

    def config(self, **overrides) -> dict:
        config = {
            "source": "ldap", "url": self.url, "bind_dn": slapdserver.READER_DN,
            "password_env": "GOVERN_LDAP_PASSWORD", "page_size": 10,
            "users": {"bases": [f"ou=people,{self.base}", f"ou=contractors,{self.base}"],
                      "attributes": ATTRIBUTE_MAP},
            "groups": {"bases": [f"ou=groups,{self.base}"]},
        }
        config.update(overrides)
        return config


def new_tree(url: str) -> Tree:
    tree = Tree(url, f"ou=t{uuid.uuid4().hex[:10]},{slapdserver.SUFFIX}")
    with tree.admin() as conn:
        conn.add(tree.base, ["organizationalUnit"])
        for ou in ("people", "contractors", "groups"):
            conn.add(f"ou={ou},{tree.base}", ["organizationalUnit"])
    return tree


def populate(tree: Tree, directory: dict, contractors: set[str] = frozenset()) -> None:
    """Users first, then groups in an order where subgroups exist before their parents
    (cycles get their missing edges in a second pass)."""
    with tree.admin() as conn:
        for uid, user in directory["users"].items():
            attrs = {"cn": user.get("display_name") or uid, "sn": uid, "uid": uid}
            if user.get("email"):
                attrs["mail"] = user["email"]
            for name, value in (user.get("attributes") or {}).items():
                attrs[ATTRIBUTE_MAP[name]] = value
            ou = "contractors" if uid in contractors else "people"
            conn.add(tree.user_dn(uid, ou), ["inetOrgPerson", "extensibleObject"], attrs)
        groups = directory["groups"]
        for name in groups:
            conn.add(tree.group_dn(name), ["groupOfNames"],
                     {"cn": name, "member": [f"cn=placeholder,{tree.base}"]})
        for name, group in groups.items():
            members = [tree.user_dn(u, "contractors" if u in contractors else "people")
                       for u in group.get("members", [])]
            members += [tree.group_dn(g) for g in group.get("subgroups", [])]
            members = members or [f"cn=placeholder,{tree.base}"]
            conn.modify(tree.group_dn(name), {"member": [(ldap3.MODIFY_REPLACE, members)]})
