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


def test_scoped_plan_shows_only_that_product(mesh):
    result = mesh.govern("plan", "--product", "clinical/trial_results", "--format", "json")
    plan = json.loads(result.stdout)
    roles = {c["object"][1] if c["privilege"] == "MEMBER" else c["principal"]
             for c in plan["targets"][0]["changes"]}
    assert roles == {f"{mesh.prefix}clinical_trial_results_results_read"}
    assert mesh.govern("apply", "--auto-approve", "--product", "clinical/trial_results")\
        .exit_code == 0
    # the scoped apply revoked nothing elsewhere and granted nothing elsewhere
    assert mesh.can_read("dave", "trial_results.outcomes")
    assert not mesh.can_read("alice", "web_engagement.page_views")
    full = json.loads(mesh.govern("plan", "--format", "json").stdout)
    assert full["summary"]["remove"] == 0


def test_markdown_plan_fits_a_pull_request_comment(mesh):
    result = mesh.govern("plan", "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith("### govern plan `")
    assert "| + |" in result.stdout and "GRANT" in result.stdout
