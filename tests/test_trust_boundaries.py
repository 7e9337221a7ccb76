"""Trust boundaries, each written as the attack it stops: a saved plan edited by hand, a
product claiming another product's tables or a system catalog, a change outside managed
scope handed to the executor. Real OPA and PostgreSQL throughout."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from govern.connectors.base import make_connector
from govern.engine.errors import ConnectorError
from govern.engine.mesh import load_mesh
from govern.engine.models import Action, Change, Grant, Privilege

ESCALATION = {"action": "add", "target": "warehouse", "principal": "dave",
              "privilege": "MEMBER", "object": ["role", "pg_execute_server_program"],
              "conditions": ""}


def is_member(mesh, user: str, role: str) -> bool:
    with mesh.connect() as conn:
        return conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (user, role)).fetchone()[0]


def content_id(data: dict) -> str:
    """What an attacker who read engine/plan.py would recompute as the plan id."""
    body = {k: v for k, v in data.items() if k not in ("format_version", "plan_id", "signature")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------ saved plans

def test_a_saved_plan_with_a_change_added_by_hand_is_refused(mesh, tmp_path):
    out = tmp_path / "plan.json"
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    data = json.loads(out.read_text())
    data["targets"][0]["changes"].append(ESCALATION)
    data["targets"][0]["statements"].append('GRANT "pg_execute_server_program" TO "dave"')
    out.write_text(json.dumps(data))
    before = mesh.catalog()
    result = mesh.govern("apply", "--auto-approve", str(out))
    assert result.exit_code == 1
    assert result.stderr == (f"error: plan {data['plan_id'][:12]!r} was modified after it was "
                             "made (its id is not the hash of its content); run plan again\n")
    assert mesh.catalog() == before
    assert not is_member(mesh, "dave", "pg_execute_server_program")


def test_a_saved_plan_with_its_id_recomputed_is_refused_for_what_it_adds(mesh, tmp_path):
    out = tmp_path / "plan.json"
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    data = json.loads(out.read_text())
    data["targets"][0]["changes"].append(ESCALATION)
    data["summary"]["add"] += 1
    data["plan_id"] = content_id(data)
    out.write_text(json.dumps(data))
    before = mesh.catalog()
    result = mesh.govern("apply", "--auto-approve", str(out))
    assert result.exit_code == 1
    assert result.stderr == (f"error: plan {data['plan_id'][:12]}: target warehouse: its "
                             "changes differ from the ones computed now (1 not computed, 0 "
                             "missing); run plan again\n")
    assert mesh.catalog() == before
    assert not is_member(mesh, "dave", "pg_execute_server_program")


def test_a_saved_plan_with_a_change_removed_is_refused(mesh, tmp_path):
    """Dropping a revoke from a reviewed plan must not keep a grant the policy took away."""
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    mesh.edit_yaml("directory.yaml",
                   lambda d: d["groups"]["commercial-analysts"]["members"].remove("bob"))
    out = tmp_path / "plan.json"
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    data = json.loads(out.read_text())
    assert [c["action"] for c in data["targets"][0]["changes"]] == ["remove"]
    data["targets"][0]["changes"], data["targets"][0]["statements"] = [], []
    data["summary"]["remove"] = 0
    data["plan_id"] = content_id(data)
    out.write_text(json.dumps(data))
    result = mesh.govern("apply", "--auto-approve", str(out))
    assert result.exit_code == 1 and "(0 not computed, 1 missing)" in result.stderr
    assert mesh.can_read("bob", "campaign_performance.campaign_kpis")


def test_the_plan_id_is_the_hash_of_the_plan(mesh, tmp_path):
    out = tmp_path / "plan.json"
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    data = json.loads(out.read_text())
    assert data["plan_id"] == content_id(data) and len(data["plan_id"]) == 64
    data["policy_commit"] = "0000000"  # any field, not only the changes
    out.write_text(json.dumps(data))
    result = mesh.govern("apply", "--auto-approve", str(out))
    assert result.exit_code == 1 and "was modified after it was made" in result.stderr


def test_signed_plans_apply_only_with_the_key_that_signed_them(mesh, tmp_path):
    unsigned, signed, other = (tmp_path / f"{n}.json" for n in ("unsigned", "signed", "other"))
    assert mesh.govern("plan", "--out", str(unsigned)).exit_code == 0
    assert json.loads(unsigned.read_text())["signature"] is None
    mesh.monkeypatch.setenv("GOVERN_PLAN_SIGNING_KEY", "another key")
    assert mesh.govern("plan", "--out", str(other)).exit_code == 0
    mesh.monkeypatch.setenv("GOVERN_PLAN_SIGNING_KEY", "the CI plan job's key")
    assert mesh.govern("plan", "--out", str(signed)).exit_code == 0
    assert json.loads(signed.read_text())["signature"].startswith("hmac-sha256:")
    before = mesh.catalog()
    for path, says in ((unsigned, "is not signed"), (other, "does not verify")):
        result = mesh.govern("apply", str(path))
        assert result.exit_code == 1, path
        assert says in result.stderr and "GOVERN_PLAN_SIGNING_KEY" in result.stderr
        assert result.stderr.count("\n") == 1
    assert mesh.catalog() == before
    result = mesh.govern("apply", str(signed))
    assert result.exit_code == 0, result.output
    assert mesh.can_read("dave", "trial_results.outcomes")


def test_required_signatures_without_a_key_refuse_every_saved_plan(mesh, tmp_path):
    out = tmp_path / "plan.json"
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    mesh.edit_yaml("govern.yaml", lambda d: d.update(plan_signing={"required": True}))
    out2 = tmp_path / "plan2.json"  # govern.yaml changed: a fresh plan, still unsigned
    assert mesh.govern("plan", "--out", str(out2)).exit_code == 0
    before = mesh.catalog()
    result = mesh.govern("apply", str(out2))
    assert result.exit_code == 1
    assert "plan_signing.required is set but $GOVERN_PLAN_SIGNING_KEY is empty" in result.stderr
    assert mesh.catalog() == before


# ------------------------------------------------------------------ one owner per object

def add_port(mesh, product: str, port: dict) -> None:
    path = mesh.root / f"products/{product}/product.yaml"
    data = yaml.safe_load(path.read_text())
    data["ports"].append(port)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def grant_everyone(mesh, product: str, port: str) -> None:
    policy = mesh.root / f"products/{product}/policy.rego"
    policy.write_text(policy.read_text() + f"""
grants contains lib.read(user, "{port}") if some user in lib.users_where("employment_type", \
"employee")
""")


WEB = "products/digital/web_engagement/product.yaml"


@pytest.mark.parametrize("namespace", [None, "hcp_master"],
                         ids=["own-namespace", "namespace-misconfigured-to-allow-it"])
def test_a_product_cannot_grant_another_products_table(mesh, namespace):
    """The issue's attack: digital/web_engagement adds a port on hcp_master's schema, its
    e-mail and name columns unflagged, and grants it to every employee."""
    if namespace:  # even if the platform's namespace map wrongly allowed it
        mesh.add_namespace("digital", namespace)
    add_port(mesh, "digital/web_engagement", {
        "name": "extra", "target": "warehouse", "location": {"schema": "hcp_master"},
        "datasets": [{"name": "hcp", "columns": [{"name": "email"}, {"name": "full_name"}]}]})
    grant_everyone(mesh, "digital/web_engagement", "extra")
    for command in (("validate",), ("plan",), ("apply", "--auto-approve")):
        result = mesh.govern(*command)
        assert result.exit_code == 1, command
        assert f"error: {WEB}: ports[1].location.schema: " in result.stderr, command
    assert "also claimed by digital/web_engagement" in result.stderr
    if not namespace:
        assert ("schema 'hcp_master' is outside domain digital's namespace on target "
                "warehouse (web_*)") in result.stderr
    assert not mesh.can_read("grace", "hcp_master.hcp")


def test_a_product_cannot_claim_a_schema_outside_its_domain(mesh):
    """A schema no product declares (a team's raw data) is not free for the taking."""
    with mesh.connect() as conn:
        conn.execute("CREATE SCHEMA payroll; CREATE TABLE payroll.salaries (who text, eur int)")
    add_port(mesh, "digital/web_engagement", {
        "name": "pay", "target": "warehouse", "location": {"schema": "payroll"},
        "datasets": [{"name": "salaries"}]})
    grant_everyone(mesh, "digital/web_engagement", "pay")
    result = mesh.govern("validate")
    assert result.exit_code == 1
    assert result.stderr == (f"error: {WEB}: ports[1].location.schema: schema 'payroll' is "
                             "outside domain digital's namespace on target warehouse (web_*)\n")
    assert mesh.govern("apply", "--auto-approve").exit_code == 1
    assert not mesh.can_read("grace", "payroll.salaries")


@pytest.mark.parametrize("schema,table", [("pg_catalog", "pg_authid"),
                                          ("information_schema", "tables"),
                                          ("pg_toast", "pg_toast_1262"),
                                          ("PG_Catalog", "pg_authid")])
def test_no_port_can_claim_a_system_schema(mesh, schema, table):
    mesh.add_namespace("digital", "*")  # not even with a namespace that allows anything
    add_port(mesh, "digital/web_engagement", {
        "name": "sys", "target": "warehouse", "location": {"schema": schema},
        "datasets": [{"name": table}]})
    grant_everyone(mesh, "digital/web_engagement", "sys")
    result = mesh.govern("validate")
    assert result.exit_code == 1
    assert result.stderr == (f"error: {WEB}: ports[1].location.schema: {schema!r} is a system "
                             "schema of PostgreSQL; a port can never claim it\n")


def test_two_ports_of_one_product_cannot_share_a_table(mesh):
    add_port(mesh, "digital/web_engagement", {
        "name": "again", "target": "warehouse", "location": {"schema": "web_engagement"},
        "datasets": [{"name": "page_views"}]})
    result = mesh.govern("validate")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {WEB}: ports[0].datasets[0].name: table web_engagement.page_views is also "
        "claimed by digital/web_engagement port again; each table belongs to one port\n"
        f"error: {WEB}: ports[1].datasets[0].name: table web_engagement.page_views is also "
        "claimed by digital/web_engagement port events; each table belongs to one port\n")


def test_a_domain_without_a_namespace_is_refused(mesh):
    mesh.edit_yaml("govern.yaml", lambda d: d["domains"]["digital"].pop("namespaces"))
    result = mesh.govern("validate")
    assert result.exit_code == 1
    assert result.stderr == (f"error: {WEB}: ports[0].location.schema: domain digital has no "
                             "namespace on target warehouse: list its schemas in govern.yaml "
                             "under domains.digital.namespaces.warehouse\n")


# ------------------------------------------------------------------ the executor's own check

def _connector(mesh):
    loaded = load_mesh(mesh.root)
    return loaded, make_connector("warehouse", loaded.config.targets["warehouse"],
                                  loaded.config.managed_prefix, loaded.config.name)


def _role(mesh, port: str) -> str:
    return f"{mesh.prefix}{port}_read"


@pytest.mark.parametrize("attack", [
    "member-of-system-role", "member-of-unmanaged-role", "select-on-system-catalog",
    "select-on-another-products-table", "write-on-a-read-port", "create-system-role",
    "drop-unmanaged-role", "privilege-to-unmanaged-role", "member-made-a-managed-role",
])
def test_the_executor_refuses_any_change_outside_managed_scope(mesh, attack):
    """Whatever made the change list (a saved plan, a bug, a caller of the library), the
    connector itself checks every change before the first statement."""
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    web = _role(mesh, "digital_web_engagement_events")
    hcp = _role(mesh, "hcp_hcp_master_curated")
    grants = {
        "member-of-system-role": Grant("warehouse", "dave", Privilege.MEMBER,
                                       ("role", "pg_execute_server_program")),
        "member-of-unmanaged-role": Grant("warehouse", "dave", Privilege.MEMBER,
                                          ("role", "postgres")),
        "select-on-system-catalog": Grant("warehouse", web, Privilege.SELECT,
                                          ("table", "pg_catalog", "pg_authid")),
        "select-on-another-products-table": Grant("warehouse", web, Privilege.SELECT,
                                                  ("table", "hcp_master", "hcp")),
        "write-on-a-read-port": Grant("warehouse", hcp, Privilege.DELETE,
                                      ("table", "hcp_master", "hcp")),
        "create-system-role": Grant("warehouse", "pg_evil", Privilege.EXISTS,
                                    ("role", "pg_evil")),
        "drop-unmanaged-role": Grant("warehouse", "alice", Privilege.EXISTS, ("role", "alice")),
        "privilege-to-unmanaged-role": Grant("warehouse", "dave", Privilege.SELECT,
                                             ("table", "hcp_master", "hcp")),
        "member-made-a-managed-role": Grant("warehouse", web, Privilege.MEMBER, ("role", hcp)),
    }
    action = Action.REMOVE if attack == "drop-unmanaged-role" else Action.ADD
    legit = Change(Action.REMOVE, Grant("warehouse", "alice", Privilege.MEMBER, ("role", web)))
    loaded, connector = _connector(mesh)
    before = mesh.catalog()
    try:
        with pytest.raises(ConnectorError, match="refusing a change outside managed scope"):
            connector.execute([legit, Change(action, grants[attack])], loaded)
    finally:
        connector.close()
    assert mesh.catalog() == before  # not even the legitimate change before it ran


def test_the_executor_runs_what_the_mesh_declares(mesh):
    loaded, connector = _connector(mesh)
    role = _role(mesh, "digital_web_engagement_events")
    changes = [Change(Action.ADD, Grant("warehouse", role, Privilege.EXISTS, ("role", role))),
               Change(Action.ADD, Grant("warehouse", role, Privilege.USAGE,
                                        ("schema", "web_engagement"))),
               Change(Action.ADD, Grant("warehouse", role, Privilege.SELECT,
                                        ("table", "web_engagement", "page_views"))),
               Change(Action.ADD, Grant("warehouse", "grace", Privilege.MEMBER, ("role", role)))]
    try:
        report = connector.execute(changes, loaded)
    finally:
        connector.close()
    assert len(report.executed) == 4
    assert mesh.can_read("grace", "web_engagement.page_views")


def test_a_port_in_another_database_is_refused_not_granted_here(mesh):
    path = mesh.root / WEB
    data = yaml.safe_load(path.read_text())
    data["ports"][0]["location"]["database"] = "finance"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    dbname = mesh.dsn.rsplit("dbname=", 1)[1]
    for command in (("validate",), ("apply", "--auto-approve")):
        result = mesh.govern(*command)
        assert result.exit_code == 1, command
        assert result.stderr == (f"error: {WEB}: ports[0].location.database: 'finance', but "
                                 f"target warehouse connects to database {dbname!r}; give the "
                                 "port a target of its own for that database\n")
    assert not mesh.can_read("alice", "web_engagement.page_views")
    data["ports"][0]["location"]["database"] = dbname  # the target's own: fine
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert mesh.can_read("alice", "web_engagement.page_views")


def test_the_executor_leaves_the_roles_of_another_target_alone(mesh):
    """Roles are cluster-wide: a second target on the same cluster holds its own port roles,
    and the first never drops, revokes or grants them."""
    mesh.edit_yaml("govern.yaml", lambda d: d["targets"].update(
        lab={"type": "postgresql", "dsn_env": "GOVERN_WAREHOUSE_DSN"}))
    mesh.add_namespace("digital", "web_engagement", target="lab")
    web_yaml = mesh.root / WEB
    web_yaml.write_text(web_yaml.read_text().replace("target: warehouse", "target: lab"))
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    web = _role(mesh, "digital_web_engagement_events")
    loaded, connector = _connector(mesh)
    before = mesh.catalog()
    try:
        for change in (Change(Action.REMOVE, Grant("warehouse", web, Privilege.EXISTS,
                                                   ("role", web))),
                       Change(Action.REMOVE, Grant("warehouse", "alice", Privilege.MEMBER,
                                                   ("role", web)))):
            with pytest.raises(ConnectorError, match="belongs to a port of another target"):
                connector.execute([change], loaded)
    finally:
        connector.close()
    assert mesh.catalog() == before
    assert mesh.can_read("alice", "web_engagement.page_views")
