"""Saved plans: applied as saved, refused when the store or the inputs changed since."""

from __future__ import annotations

import json


def test_saved_plan_applies_and_is_audited(mesh, tmp_path):
    out = tmp_path / "plan.json"
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    saved = json.loads(out.read_text())
    result = mesh.govern("apply", str(out))
    assert result.exit_code == 0, result.output
    assert mesh.can_read("dave", "trial_results.outcomes")
    records = [json.loads(line) for line in
               (mesh.root / ".govern/audit.jsonl").read_text().splitlines()]
    assert [r["result"] for r in records] == ["started", "ok"]  # no record, no statement
    record = records[1]
    assert record["plan_id"] == saved["plan_id"] and record["result"] == "ok"
    assert record["statements"] == saved["targets"][0]["statements"]
    assert record["who"] and record["decision_ids"] and record["policy_commit"]


def test_saved_plan_is_refused_when_the_store_changed(mesh, tmp_path):
    out = tmp_path / "plan.json"
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    mesh.edit_yaml("directory.yaml",
                   lambda d: d["groups"]["commercial-analysts"]["members"].remove("bob"))
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    with mesh.connect() as conn:  # someone changes a managed grant by hand meanwhile
        conn.execute(f'REVOKE "{mesh.prefix}digital_web_engagement_events_read" FROM alice')
    before = mesh.catalog()
    result = mesh.govern("apply", str(out))
    assert result.exit_code == 1
    assert "target warehouse changed since the plan was made" in result.stderr
    assert mesh.catalog() == before


def test_saved_plan_is_refused_when_the_inputs_changed(mesh, tmp_path):
    out = tmp_path / "plan.json"
    assert mesh.govern("plan", "--out", str(out)).exit_code == 0
    mesh.edit_yaml("directory.yaml",
                   lambda d: d["groups"]["commercial-analysts"]["members"].remove("bob"))
    before = mesh.catalog()
    result = mesh.govern("apply", str(out))
    assert result.exit_code == 1
    assert "the mesh, directory or approvals changed" in result.stderr
    assert mesh.catalog() == before


def test_a_product_scoped_apply_keeps_everything_outside_its_scope(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    # two changes pending: one inside the scope (dave leaves the investigators), one outside
    # (bob leaves the analysts); the scoped run must carry out only the first
    def change(d):
        d["groups"]["clinical-investigators"]["members"].remove("dave")
        d["groups"]["commercial-analysts"]["members"].remove("bob")
    mesh.edit_yaml("directory.yaml", change)
    mesh.edit_yaml("govern.yaml", lambda d: d["directory"].update(max_shrink_fraction=0.5))
    result = mesh.govern("plan", "--product", "clinical/trial_results", "--format", "json")
    plan = json.loads(result.stdout)
    assert [(c["action"], c["principal"], c["object"][1]) for c in plan["targets"][0]["changes"]] \
        == [("remove", "dave", f"{mesh.prefix}clinical_trial_results_results_read")]
    assert mesh.govern("apply", "--auto-approve", "--product", "clinical/trial_results")\
        .exit_code == 0
    assert not mesh.can_read("dave", "trial_results.outcomes")
    assert mesh.can_read("bob", "campaign_performance.campaign_kpis")  # outside: kept
    full = json.loads(mesh.govern("plan", "--format", "json").stdout)
    assert [(c["action"], c["principal"]) for c in full["targets"][0]["changes"]] == \
        [("remove", "bob")]


def test_a_target_scoped_apply_keeps_the_other_targets(mesh, pg_cluster):
    """digital/web_engagement moves to a second database (target `lab`); a run scoped to
    `warehouse` changes nothing in `lab`."""
    from psycopg import sql

    from .conftest import dsn_for

    lab_db = f"{mesh.dsn.rsplit('dbname=', 1)[1]}_lab"
    import psycopg
    with psycopg.connect(pg_cluster, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(lab_db)))
    lab = dsn_for(pg_cluster, lab_db)
    with psycopg.connect(lab, autocommit=True) as conn:
        conn.execute((mesh.root / "seed.sql").read_text())
    mesh.monkeypatch.setenv("GOVERN_LAB_DSN", lab)
    mesh.edit_yaml("govern.yaml", lambda d: d["targets"].update(
        lab={"type": "postgresql", "dsn_env": "GOVERN_LAB_DSN", "create_login_roles": True}))
    mesh.add_namespace("digital", "web_engagement", target="lab")
    web = mesh.root / "products/digital/web_engagement/product.yaml"
    web.write_text(web.read_text().replace("target: warehouse", "target: lab"))
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output

    def reads(dsn: str, user: str, table: str) -> bool:
        with psycopg.connect(dsn) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(user)))
            try:
                conn.execute(f"SELECT * FROM {table} LIMIT 1")
                return True
            except psycopg.errors.InsufficientPrivilege:
                return False
            finally:
                conn.rollback()

    assert reads(lab, "alice", "web_engagement.page_views")
    def change(d):  # alice leaves (lab) and bob leaves the analysts (warehouse)
        d["users"]["alice"]["attributes"]["employment_type"] = "contractor"
        d["groups"]["commercial-analysts"]["members"].remove("bob")
    mesh.edit_yaml("directory.yaml", change)
    result = mesh.govern("apply", "--auto-approve", "--target", "warehouse")
    assert result.exit_code == 0, result.output
    assert not mesh.can_read("bob", "campaign_performance.campaign_kpis")
    assert reads(lab, "alice", "web_engagement.page_views")  # the other target: untouched
    full = json.loads(mesh.govern("plan", "--format", "json").stdout)
    pending = {t["target"]: [(c["action"], c["principal"]) for c in t["changes"]]
               for t in full["targets"]}
    assert pending == {"lab": [("remove", "alice")], "warehouse": []}


def test_markdown_plan_fits_a_pull_request_comment(mesh):
    result = mesh.govern("plan", "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith("### govern plan `")
    assert "| + |" in result.stdout and "GRANT" in result.stdout
