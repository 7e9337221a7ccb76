"""Promises of the README and docs/contract.md that had no test: principals the store
cannot hold, names over the store's limits, retried serialization failures and deadlocks,
the write role, login roles never dropped, saved plans made stale by any input, the
mass-revoke guard on plan, and apply refusing to run unasked. Real OPA and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from .test_fail_closed import assert_refused
from .test_names import add_hostile_product


def add_user(mesh, uid: str, group: str = "commercial-analysts") -> None:
    def change(d):
        d["users"][uid] = {"display_name": uid, "email": None,
                           "attributes": {"employment_type": "employee"}}
        d["groups"][group]["members"].append(uid)
    mesh.edit_yaml("directory.yaml", change)


# ------------------------------------------------------------------ principals and names

@pytest.mark.parametrize("uid,says", [
    ("pg_monitor", "is reserved in PostgreSQL"), ("public", "is reserved in PostgreSQL"),
    ("current_user", "is reserved in PostgreSQL"), (None, "starts with the managed prefix"),
])
def test_a_directory_user_the_store_cannot_hold_stops_the_run(mesh, uid, says):
    uid = uid or f"{mesh.prefix}intruder"
    add_user(mesh, uid)
    before = mesh.catalog()
    for command in (("plan",), ("apply", "--auto-approve")):
        result = mesh.govern(*command)
        assert_refused(mesh, result, f"principal {uid}: role name {uid!r} {says}")
    assert mesh.catalog() == before


@pytest.mark.parametrize("where", ["schema", "column"])
def test_schema_and_column_names_over_63_bytes_are_refused(mesh, where):
    long = "ü" * 32  # 64 bytes in 32 characters
    if where == "schema":
        add_hostile_product(mesh, schema=long, table="t")
        path = "ports[0].location.schema"
    else:
        add_hostile_product(mesh, schema="hostile", table="t", column=long)
        path = "ports[0].datasets[0].columns[0].name"
    result = mesh.govern("validate")
    assert result.exit_code == 1
    assert (f"error: products/hostile/names/product.yaml: {path}: 64 bytes; PostgreSQL names "
            "are at most 63") in result.stderr


def test_a_managed_role_name_over_63_bytes_is_refused(mesh):
    path = mesh.root / "products/digital/web_engagement/product.yaml"
    data = yaml.safe_load(path.read_text())
    data["ports"][0]["name"] = "p" * 40  # the longest port name; the role adds the rest
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = mesh.govern("validate")
    assert result.exit_code == 1
    role = f"{mesh.prefix}digital_web_engagement_{'p' * 40}_read"
    assert f"ports[0].name: managed role {role} is {len(role)} bytes; at most 63" \
        in result.stderr


# ------------------------------------------------------------------ retries

RAISE_ON_GRANT = """
CREATE SEQUENCE govern_test_failures;
CREATE FUNCTION govern_test_fail() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  -- a sequence is not rolled back with the failed transaction: it counts the attempts
  IF nextval('govern_test_failures') <= {times} THEN
    RAISE EXCEPTION 'injected by the test' USING ERRCODE = '{code}';
  END IF;
END $$;
CREATE EVENT TRIGGER govern_test_fail ON ddl_command_start WHEN TAG IN ('GRANT')
  EXECUTE FUNCTION govern_test_fail();
"""


@pytest.mark.parametrize("code", ["40001", "40P01"], ids=["serialization", "deadlock"])
def test_a_transient_failure_is_retried_and_the_apply_converges(mesh, code):
    with mesh.connect() as conn:
        conn.execute(RAISE_ON_GRANT.format(times=2, code=code))
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    with mesh.connect() as conn:
        assert conn.execute("SELECT last_value FROM govern_test_failures").fetchone()[0] >= 3
    assert mesh.can_read("alice", "web_engagement.page_views")
    assert "No changes" in mesh.govern("plan").stdout


@pytest.mark.parametrize("code", ["40001", "40P01"], ids=["serialization", "deadlock"])
def test_a_failure_that_persists_fails_after_three_attempts(mesh, code):
    with mesh.connect() as conn:
        conn.execute(RAISE_ON_GRANT.format(times=1000, code=code))
    result = mesh.govern("apply", "--auto-approve")
    assert_refused(mesh, result, "failed 3 times: injected by the test")
    with mesh.connect() as conn:
        attempts = conn.execute("SELECT last_value FROM govern_test_failures").fetchone()[0]
    assert attempts == 3  # the first batch with a GRANT, three times, then nothing more


# ------------------------------------------------------------------ what the roles hold

def test_the_write_role_updates_and_deletes_and_the_read_role_does_not(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    for statement in ("UPDATE hcp_master.hcp SET country = country",
                      "DELETE FROM hcp_master.hcp WHERE false",
                      "INSERT INTO hcp_master.hcp (hcp_id) SELECT 'x' WHERE false"):
        assert mesh.can("carol", statement), statement  # hcp-data-engineers write
        assert not mesh.can("heidi", statement), statement  # hcp-stewards only read
    assert mesh.can_read("heidi", "hcp_master.hcp")


def test_login_roles_are_created_never_dropped(mesh):
    add_user(mesh, "zoe")
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert mesh.can_read("zoe", "campaign_performance.campaign_kpis")
    def leave(d):
        del d["users"]["zoe"]
        d["groups"]["commercial-analysts"]["members"].remove("zoe")
    mesh.edit_yaml("directory.yaml", leave)
    mesh.edit_yaml("govern.yaml", lambda d: d["directory"].update(max_shrink_fraction=0.5))
    plan = json.loads(mesh.govern("plan", "--format", "json").stdout)
    changes = [(c["action"], c["privilege"], c["principal"]) for c in plan["targets"][0]["changes"]]
    # the memberships (campaign through the group, web as an employee), never the role
    assert changes == [("remove", "MEMBER", "zoe")] * 2
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    with mesh.connect() as conn:
        assert conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'zoe'"
                            ).fetchone() == (True,)
    assert not mesh.can_read("zoe", "campaign_performance.campaign_kpis")


# ------------------------------------------------------------------ saved plans go stale

def _policy_edit(mesh):
    policy = mesh.root / "products/digital/web_engagement/policy.rego"
    policy.write_text(policy.read_text() + "\n# a comment is a change of the policy too\n")


def _mesh_edit(mesh):
    mesh.edit_yaml("products/digital/web_engagement/product.yaml",
                   lambda d: d.update(description="Page views of the portal, per page."))


def _approval_edit(mesh):
    mesh.edit_yaml("approvals.yaml", lambda d: d["approvals"][2].update(status="approved"))


@pytest.mark.parametrize("edit", [_policy_edit, _mesh_edit, _approval_edit],
                         ids=["policy", "product.yaml", "approvals"])
def test_a_saved_plan_is_stale_after_any_input_changes(mesh, tmp_path, edit):
    out = tmp_path / "plan.json"
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    edit(mesh)
    before = mesh.catalog()
    result = mesh.govern("apply", str(out))
    assert_refused(mesh, result, "the mesh, directory or approvals changed since it was made")
    assert mesh.catalog() == before


# ------------------------------------------------------------------ the mass-revoke guard

def _revoke_all_web(mesh, fraction: float, min_revokes: int) -> None:
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    mesh.edit_yaml("govern.yaml", lambda d: d.update(
        guards={"max_revoke_fraction": fraction, "min_revokes": min_revokes}))
    policy = mesh.root / "products/digital/web_engagement/policy.rego"
    policy.write_text("package products.digital.web_engagement\n\ngrants := set()\n")


def test_the_mass_revoke_guard_stops_plan_too(mesh):
    _revoke_all_web(mesh, 0.1, 3)  # 7 memberships of 43 managed grants: over 10%
    result = mesh.govern("plan")
    assert_refused(mesh, result, "plan revokes 7 of 43 managed grants (over 10%)")
    assert mesh.govern("plan", "--allow-mass-revoke").exit_code == 0


def test_below_min_revokes_the_guard_never_trips(mesh):
    _revoke_all_web(mesh, 0.01, 8)  # 7 revokes, well over 1%, but fewer than 8
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert not mesh.can_read("alice", "web_engagement.page_views")


# ------------------------------------------------------------------ asked, not assumed

def test_apply_without_auto_approve_and_no_terminal_refuses(mesh):
    before = mesh.catalog()
    proc = subprocess.run([sys.executable, "-m", "govern.cli", "--mesh", str(mesh.root),
                           "apply"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        "error: apply needs --auto-approve when not run from a terminal"
    assert mesh.catalog() == before


# ------------------------------------------------------------------ two meshes, one prefix

def test_a_second_mesh_with_the_same_prefix_is_told_whose_roles_they_are(mesh, tmp_path):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    with mesh.connect() as conn:
        role = f"{mesh.prefix}hcp_hcp_master_curated_read"
        assert conn.execute("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles "
                            "WHERE rolname = %s", (role,)).fetchone() == ("govern: mesh pharma",)
    import shutil

    other = tmp_path / "other-mesh"  # another team's mesh: one product, the same prefix
    shutil.copytree(mesh.root, other, ignore=shutil.ignore_patterns(".govern"))
    for product in ("hcp/hcp_master", "clinical/trial_results", "commercial/campaign_performance",
                    "medical/field_inquiries"):
        shutil.rmtree(other / "products" / product)
    config = yaml.safe_load((other / "govern.yaml").read_text())
    config["name"] = "marketing"
    (other / "govern.yaml").write_text(yaml.safe_dump(config))
    before = mesh.catalog()
    result = type(mesh)(other, mesh.dsn, mesh.prefix, mesh.monkeypatch).govern(
        "apply", "--auto-approve", "--allow-mass-revoke")
    assert_refused(mesh, result, f"belongs to mesh 'pharma', not 'marketing' (its comment says "
                                 f"so): two meshes share managed_prefix {mesh.prefix!r}")
    assert mesh.catalog() == before
