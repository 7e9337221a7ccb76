"""Fail closed: any missing or failed input means no statement runs, one line, exit 1."""

from __future__ import annotations

import pytest

from govern.engine.opa import free_port


def assert_refused(mesh, result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]


def break_opa(mesh):
    mesh.edit_yaml("govern.yaml", lambda d: d.setdefault("opa", {}).update(
        url=f"http://127.0.0.1:{free_port()}", timeout_seconds=2))
    return "unreachable"


def undefined_decision(mesh):
    policy = mesh.root / "products/digital/web_engagement/policy.rego"
    policy.write_text(policy.read_text().replace("grants contains", "grant contains"))
    return "data.products.digital.web_engagement.grants is undefined"


def runtime_error(mesh):
    policy = mesh.root / "products/clinical/trial_results/policy.rego"
    policy.write_text(policy.read_text() + '\ngrants contains lib.read(user, "results") if {\n'
                      '\tsome user in lib.all_users\n\tto_number("not a number") > 0\n}\n')
    return "to_number"


def compile_error(mesh):
    policy = mesh.root / "products/hcp/hcp_master/policy.rego"
    policy.write_text(policy.read_text() + "\ngrants contains x if { x := unknown_fn(1) }\n")
    return ("OPA refused the policies: products/hcp/hcp_master/policy.rego:15: rego_type_error: "
            "undefined function unknown_fn")


def empty_directory(mesh):
    (mesh.root / "directory.yaml").write_text("users: {}\ngroups: {}\n")
    return "has no users"


def directory_missing(mesh):
    (mesh.root / "directory.yaml").unlink()
    return "directory file"


def store_unreachable(mesh):
    mesh.monkeypatch.setenv("GOVERN_WAREHOUSE_DSN", f"host=127.0.0.1 port={free_port()} "
                            "user=postgres dbname=postgres connect_timeout=2")
    return "target warehouse: cannot connect"


@pytest.mark.parametrize("breakage", [break_opa, undefined_decision, runtime_error, compile_error,
                                      empty_directory, directory_missing, store_unreachable])
@pytest.mark.parametrize("command", [("plan",), ("apply", "--auto-approve")])
def test_nothing_is_executed_when_an_input_fails(mesh, breakage, command):
    before = mesh.catalog()
    expected = breakage(mesh)
    result = mesh.govern(*command)
    assert_refused(mesh, result, expected)
    assert mesh.catalog() == before


def test_a_failed_input_after_an_apply_revokes_nothing(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    applied = mesh.catalog()
    empty_directory(mesh)
    assert_refused(mesh, mesh.govern("apply", "--auto-approve"), "has no users")
    assert mesh.catalog() == applied


def test_guardrail_violation_blocks_plan_and_apply(mesh):
    # secret trial results granted to every user: outside the clinical domain
    policy = mesh.root / "products/clinical/trial_results/policy.rego"
    policy.write_text(policy.read_text() + '\ngrants contains lib.read(user, "results") if '
                      'some user in lib.all_users\n')
    before = mesh.catalog()
    for command in (("validate",), ("plan",), ("apply", "--auto-approve")):
        result = mesh.govern(*command)
        assert result.exit_code == 1
        assert "secret-outside-domain" in result.stderr
    assert mesh.catalog() == before


def test_mass_revoke_stops_unless_allowed(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    mesh.edit_yaml("govern.yaml", lambda d: d.update(guards={"max_revoke_fraction": 0.1,
                                                             "min_revokes": 3}))
    policy = mesh.root / "products/digital/web_engagement/policy.rego"
    policy.write_text("package products.digital.web_engagement\n\ngrants := set()\n")
    applied = mesh.catalog()
    result = mesh.govern("apply", "--auto-approve")
    assert_refused(mesh, result, "--allow-mass-revoke")
    assert mesh.catalog() == applied
    result = mesh.govern("apply", "--auto-approve", "--allow-mass-revoke")
    assert result.exit_code == 0, result.output
    assert not mesh.can_read("alice", "web_engagement.page_views")
