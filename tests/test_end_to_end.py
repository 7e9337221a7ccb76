"""The example mesh applied to a real PostgreSQL through a real OPA."""

from __future__ import annotations

import json


import pgcluster  # scripts/, on the path by conftest

TABLES = {
    "hcp": "hcp_master.hcp",
    "campaign": "campaign_performance.campaign_kpis",
    "trial": "trial_results.outcomes",
    "web": "web_engagement.page_views",
    "inquiries": "field_inquiries.inquiry",
}
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]

# What the example policies say, in words (examples/mesh/products/*/policy.rego):
EXPECTED_READERS = {
    # stewards incl. nested engineers; frank by approval; erin's approval expired
    "hcp": {"carol", "heidi", "frank"},
    # commercial-analysts incl. nested campaign-managers; Commercial in the EU
    "campaign": {"alice", "bob", "frank"},
    # clinical investigators in department Clinical (grace is in Research)
    "trial": {"dave"},
    # every employee (erin is a contractor)
    "web": set(USERS) - {"erin"},
    # approved requests only (req-4): not even the owner, heidi, reads without one
    "inquiries": {"bob"},
}


def test_apply_grants_exactly_what_the_policies_say(mesh):
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    for key, table in TABLES.items():
        readers = {u for u in USERS if mesh.can_read(u, table)}
        assert readers == EXPECTED_READERS[key], table
    # write access: data engineers only
    insert = "INSERT INTO hcp_master.hcp (hcp_id) VALUES ('X9')"
    assert mesh.can("carol", insert)
    assert not mesh.can("heidi", insert)


def test_plan_after_apply_is_empty_and_apply_twice_is_apply_once(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    after_first = mesh.catalog()
    result = mesh.govern("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output
    second = mesh.govern("apply", "--auto-approve")
    assert second.exit_code == 0
    assert "No changes" in second.output
    assert mesh.catalog() == after_first


def test_plan_exit_codes_and_json(mesh, pg_folder):
    dbname = mesh.dsn.rsplit("dbname=", 1)[1]
    with pgcluster.statement_log(pg_folder, "govern", dbname) as logged:
        result = mesh.govern("plan", "--detailed-exitcode", "--format", "json")
    assert result.exit_code == 2
    plan = json.loads(result.stdout)
    assert plan["summary"]["remove"] == 0 and plan["summary"]["add"] > 0
    # what the server saw from govern's connection: the two catalog reads, nothing else
    assert logged["statements"] == plan["targets"][0]["round_trips"] == 2, logged["lines"]
    assert plan["decision_ids"], "decision ids are kept for the audit log"
    # OPA's own decision log has each decision, but not its input or result (every grant)
    log = (mesh.root / ".govern/opa.log").read_text()
    assert all(d in log for d in plan["decision_ids"])
    assert '"erased":["/input","/result"]' in log and "carol" not in log


def test_removing_a_user_from_a_group_revokes_exactly_that_membership(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    # bob reads campaign_performance only through commercial-analysts (he is in the US)
    mesh.edit_yaml("directory.yaml",
                   lambda d: d["groups"]["commercial-analysts"]["members"].remove("bob"))
    plan = json.loads(mesh.govern("plan", "--format", "json").stdout)
    changes = plan["targets"][0]["changes"]
    assert [(c["action"], c["principal"], c["privilege"], c["object"]) for c in changes] == [
        ("remove", "bob", "MEMBER",
         ["role", f"{mesh.prefix}commercial_campaign_performance_reporting_read"])]
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert not mesh.can_read("bob", TABLES["campaign"])
    assert mesh.can_read("alice", TABLES["campaign"])


def test_changing_one_policy_shows_exactly_that_revoke(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    policy = mesh.root / "products/hcp/hcp_master/policy.rego"
    text = policy.read_text()
    kept = [line for line in text.splitlines() if "lib.approved(" not in line]
    assert len(kept) == len(text.splitlines()) - 1
    policy.write_text("\n".join(kept) + "\n")
    plan = json.loads(mesh.govern("plan", "--format", "json").stdout)
    changes = plan["targets"][0]["changes"]
    assert [(c["action"], c["principal"], c["object"][1]) for c in changes] == [
        ("remove", "frank", f"{mesh.prefix}hcp_hcp_master_curated_read")]


def test_roles_outside_the_prefix_are_never_touched(mesh):
    with mesh.connect() as conn:
        conn.execute("DROP ROLE IF EXISTS legacy_reader")
        conn.execute("CREATE ROLE legacy_reader NOLOGIN")
        conn.execute("GRANT USAGE ON SCHEMA hcp_master TO legacy_reader")
        conn.execute("GRANT SELECT, UPDATE ON hcp_master.hcp TO legacy_reader")
        conn.execute("GRANT legacy_reader TO erin")

    def legacy() -> set:
        rows = {r for r in mesh.catalog() if r[0] in ("role", "member") and "legacy" in str(r)}
        acl = next(r[2] for r in mesh.catalog() if r[:2] == ("acl", "hcp_master.hcp"))
        return rows | {tok for tok in acl.strip("{}").split(",") if tok.startswith("legacy")}

    before = legacy()
    assert before == {("role", "legacy_reader", "false", None),
                      ("member", "legacy_reader", "erin", None), "legacy_reader=rw/postgres"}
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0
    assert "legacy_reader" not in result.output
    assert legacy() == before
    assert mesh.can_read("erin", TABLES["hcp"])  # through legacy_reader, not through govern


def test_drift_on_a_managed_role_is_corrected(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    role = f"{mesh.prefix}digital_web_engagement_events_read"
    with mesh.connect() as conn:
        conn.execute(f'GRANT SELECT ON hcp_master.hcp TO "{role}"')
        conn.execute(f'GRANT "{role}" TO erin')
    plan = json.loads(mesh.govern("plan", "--format", "json").stdout)
    removes = {(c["principal"], c["privilege"], tuple(c["object"]))
               for c in plan["targets"][0]["changes"] if c["action"] == "remove"}
    assert removes == {(role, "SELECT", ("table", "hcp_master", "hcp")),
                       ("erin", "MEMBER", ("role", role))}
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert not mesh.can_read("erin", TABLES["web"])


def test_users_missing_in_the_store_are_reported_not_invented(mesh):
    mesh.edit_yaml("govern.yaml", lambda d: d["targets"]["warehouse"].update(
        create_login_roles=False))
    newcomer = f"nina_{mesh.prefix}"
    mesh.edit_yaml("directory.yaml", lambda d: (
        d["users"].update({newcomer: {"attributes": {"employment_type": "employee"}}})))
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert (f"warning: principal {newcomer}: no role '{newcomer}' in target warehouse; skipped"
            in result.stderr)
    with mesh.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                            (newcomer,)).fetchone() is None
    assert mesh.can_read("alice", TABLES["web"])


def test_a_failed_statement_is_reported_audited_and_the_rest_converges(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    role = f"{mesh.prefix}digital_web_engagement_events_read"
    with mesh.connect() as conn:  # a managed role that owns an object cannot be dropped
        conn.execute("CREATE TABLE web_engagement.scratch (x int)")
        conn.execute(f'ALTER TABLE web_engagement.scratch OWNER TO "{role}"')
    import shutil
    shutil.rmtree(mesh.root / "products/digital")
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: apply failed: target warehouse: ")
    assert f'DROP ROLE "{role}"' in lines[0]
    record = json.loads((mesh.root / ".govern/audit.jsonl").read_text().splitlines()[-1])
    assert record["result"] == "failed" and record["failed_statement"] == f'DROP ROLE "{role}"'
    # the revokes before the failing batch are committed and audited
    assert any(s.startswith("REVOKE") for s in record["statements"])
    assert not mesh.can_read("alice", TABLES["web"])
    with mesh.connect() as conn:
        conn.execute("DROP TABLE web_engagement.scratch")
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert mesh.govern("plan", "--detailed-exitcode").exit_code == 0
