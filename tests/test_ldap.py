"""The directory from a real OpenLDAP slapd (Debian's), started by the tests."""

from __future__ import annotations

import json
import shutil

import ldap3
import pytest
import yaml

import slapdserver
from govern.engine.errors import IdentityError
from govern.engine.spec import LDAPDirectoryConfig
from govern.identity.base import Snapshot
from govern.identity.file import FileDirectory
from govern.identity.ldap import LDAPDirectory

from .conftest import EXAMPLE
from .ldap_support import new_tree, populate
from .test_end_to_end import EXPECTED_READERS, TABLES, USERS

HOSTILE_UID = "o*(b)\\ri,en"

DIRECTORY = {
    "users": {
        **{f"user{i:02d}": {"display_name": f"User {i}", "attributes": {"department": "Data"}}
           for i in range(25)},
        "zoe": {"display_name": "Zoë Ærø", "email": "zoe@example.com",
                "attributes": {"department": "Fórmulação", "country": "PT"}},
        HOSTILE_UID: {"display_name": "Hostile", "attributes": {"department": "Ops"}},
        "carl": {"display_name": "Carl Contractor",
                 "attributes": {"employment_type": "contractor"}},
    },
    "groups": {
        "level1": {"members": ["user00"], "subgroups": ["level2"]},
        "level2": {"members": ["user01"], "subgroups": ["level3"]},
        "level3": {"members": ["zoe", HOSTILE_UID, "carl"], "subgroups": []},
        "cycle-a": {"members": ["user02"], "subgroups": ["cycle-b"]},
        "cycle-b": {"members": ["user03"], "subgroups": ["cycle-a"]},
        "big": {"members": [f"user{i:02d}" for i in range(25)], "subgroups": []},
    },
}


@pytest.fixture
def tree(slapd, monkeypatch):
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.READER_PW)
    return new_tree(slapd[0])


def read(tree, **overrides) -> Snapshot:
    config = LDAPDirectoryConfig.model_validate(tree.config(**overrides))
    return LDAPDirectory(config).snapshot()


def test_snapshot_is_exactly_the_directory(tree, tmp_path):
    populate(tree, DIRECTORY, contractors={"carl"})
    snapshot = read(tree)
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(DIRECTORY, allow_unicode=True))
    assert snapshot.to_data() == FileDirectory(path).snapshot().to_data()
    assert snapshot.users["zoe"].attributes == {"department": "Fórmulação", "country": "PT"}
    assert snapshot.users["zoe"].display_name == "Zoë Ærø"
    assert "carl" in snapshot.users  # users in two OUs
    assert set(snapshot.groups_of(HOSTILE_UID)) == {"level3", "level2", "level1"}
    assert set(snapshot.groups_of("user02")) == {"cycle-a", "cycle-b", "big"}


def test_paging_order_does_not_matter(tree):
    populate(tree, DIRECTORY, contractors={"carl"})
    first = read(tree, page_size=7)
    assert read(tree, page_size=1000).to_data() == first.to_data()
    assert read(tree, page_size=3).fingerprint() == first.fingerprint()


def test_member_values_as_uids(tree):
    populate(tree, DIRECTORY)
    with tree.admin() as conn:
        conn.add(f"cn=posix-devs,ou=groups,{tree.base}", ["posixGroup"],
                 {"cn": "posix-devs", "gidNumber": 5000, "memberUid": ["user04", "ZOE", "ghost"]})
    snapshot = read(tree, groups={"bases": [f"ou=groups,{tree.base}"],
                                  "filter": "(objectClass=posixGroup)",
                                  "member_attribute": "memberUid"})
    assert set(snapshot.groups) == {"posix-devs"}
    assert snapshot.groups["posix-devs"].members == {"user04", "zoe"}


def test_size_limit_hit_fails_closed(tree, monkeypatch):
    populate(tree, {"users": {f"u{i:03d}": {} for i in range(60)}, "groups": {}})
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.LIMITED_PW)
    with pytest.raises(IdentityError, match="sizeLimitExceeded; refusing a partial directory"):
        read(tree, bind_dn=slapdserver.LIMITED_DN)


def test_wrong_password(tree, monkeypatch):
    populate(tree, DIRECTORY)
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", "wrong")
    with pytest.raises(IdentityError, match="bind as cn=reader,dc=example,dc=com failed: "
                                            "invalidCredentials"):
        read(tree)


def test_in_chain_on_a_server_without_it_fails_instead_of_returning_empty_groups(tree):
    populate(tree, DIRECTORY)
    groups = {"bases": [f"ou=groups,{tree.base}"], "in_chain": True}
    with pytest.raises(IdentityError, match="does not support it"):
        read(tree, groups=groups)


def test_server_stopped_mid_read(tree, slapd, monkeypatch):
    populate(tree, DIRECTORY)
    real = LDAPDirectory.search
    stopped = []

    def search_then_stop(self, conn, base, flt, attributes):
        for i, entry in enumerate(real(self, conn, base, flt, attributes)):
            if i == 12 and not stopped:  # within the second page of users
                slapdserver.stop(slapd[1])
                stopped.append(True)
            yield entry

    monkeypatch.setattr(LDAPDirectory, "search", search_then_stop)
    try:
        with pytest.raises(IdentityError, match="search under .* failed"):
            read(tree)
    finally:
        slapdserver.restart(slapd[1])
    assert stopped
    assert read(tree).users.keys() == DIRECTORY["users"].keys()  # and back again


# ---------------------------------------------------------------- the whole engine on LDAP

@pytest.fixture
def ldap_mesh(mesh, tree):
    """The example mesh, its directory served by slapd instead of directory.yaml."""
    example = yaml.safe_load((EXAMPLE / "directory.yaml").read_text())
    populate(tree, example, contractors={"erin"})
    mesh.edit_yaml("govern.yaml", lambda d: d.update(directory=tree.config()))
    (mesh.root / "directory.yaml").unlink()
    return mesh, tree


def test_apply_from_ldap_grants_what_the_policies_say(ldap_mesh):
    mesh, tree = ldap_mesh
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    for key, table in TABLES.items():
        assert {u for u in USERS if mesh.can_read(u, table)} == EXPECTED_READERS[key], table
    # remove bob from commercial-analysts in LDAP: the next plan revokes exactly that
    with tree.admin() as conn:
        conn.modify(tree.group_dn("commercial-analysts"),
                    {"member": [(ldap3.MODIFY_DELETE, [tree.user_dn("bob")])]})
    plan = json.loads(mesh.govern("plan", "--format", "json").stdout)
    assert [(c["action"], c["principal"], c["object"][1])
            for c in plan["targets"][0]["changes"]] == [
        ("remove", "bob", f"{mesh.prefix}commercial_campaign_performance_reporting_read")]


def test_directory_failures_run_nothing(ldap_mesh, monkeypatch):
    mesh, tree = ldap_mesh
    before = mesh.catalog()
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", "wrong")
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "invalidCredentials" in result.stderr
    assert mesh.catalog() == before


def test_shrunken_directory_runs_nothing(ldap_mesh):
    mesh, tree = ldap_mesh
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    applied = mesh.catalog()
    with tree.admin() as conn:  # half the people vanish (a broken sync, a wrong base DN)
        for uid in ("alice", "bob", "carol", "dave"):
            conn.delete(tree.user_dn(uid))
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 1
    assert "down from 8 at the last successful read" in result.stderr
    assert mesh.catalog() == applied


def test_directory_show_and_export(ldap_mesh, tmp_path):
    mesh, tree = ldap_mesh
    result = mesh.govern("directory", "show", "Carol", "--format", "json")
    shown = json.loads(result.stdout)
    assert shown["groups"]["hcp-team"] == ["hcp-data-engineers", "hcp-platform", "hcp-stewards",
                                           "hcp-team"]
    assert shown["attributes"] == {"country": "FR", "department": "Data",
                                   "employment_type": "employee"}
    out = tmp_path / "exported.yaml"
    assert mesh.govern("directory", "export", "--out", str(out)).exit_code == 0
    exported = FileDirectory(out).snapshot()
    original = FileDirectory(EXAMPLE / "directory.yaml").snapshot()
    assert exported.to_data() == original.to_data()


# ---------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def tls_slapd():
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="govern-slapd-tls-"))
    try:
        yield slapdserver.start(folder, tls=True), folder
    finally:
        slapdserver.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tls_tree(tls_slapd, monkeypatch):
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.READER_PW)
    tree = new_tree(tls_slapd[0])
    populate(tree, DIRECTORY)
    return tree, tls_slapd[1]


def test_ldaps_with_a_custom_ca(tls_tree):
    tree, folder = tls_tree
    snapshot = read(tree, url=slapdserver.tls_url(folder), ca_file=str(folder / "ca.pem"))
    assert "zoe" in snapshot.users
    with pytest.raises(IdentityError):  # the system CAs do not know ours: refused, not ignored
        read(tree, url=slapdserver.tls_url(folder))


def test_start_tls_with_a_custom_ca(tls_tree):
    tree, folder = tls_tree
    snapshot = read(tree, start_tls=True, ca_file=str(folder / "ca.pem"))
    assert "zoe" in snapshot.users
    with pytest.raises(IdentityError, match="StartTLS failed|certificate"):
        read(tree, start_tls=True)
