"""`govern request …` on the example mesh, with a real OPA deciding who may approve and a
real PostgreSQL target: an approval becomes a grant at the next apply, and an expired or
revoked one a revoke."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading

import pytest
from sqlalchemy import text

from govern.engine import pipeline
from govern.engine.requests import RequestStore

from .test_end_to_end import TABLES
from .test_requests_store import FUTURE, HOSTILE, TODAY, new_pg_database

YESTERDAY = TODAY - dt.timedelta(days=1)


def as_user(mesh, user: str, *args: str):
    mesh.monkeypatch.setenv("GOVERN_USER", user)
    return mesh.govern(*args)


def create(mesh, user: str, *extra: str, product: str = "clinical/trial_results") -> str:
    result = as_user(mesh, user, "request", "create", product, "--purpose", "Safety review",
                     "--until", FUTURE.isoformat(), "--accept-dsa", "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["id"]


def changes(mesh) -> list[tuple]:
    result = mesh.govern("plan", "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    return [(c["action"], c["principal"], c["privilege"], c["object"][1])
            for t in plan["targets"] for c in t["changes"]]


def store_of(mesh) -> RequestStore:
    config = pipeline.load_inputs(mesh.root).mesh.config.requests
    return RequestStore.for_config(config, mesh.root, migrate=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def request_mesh(request, mesh, pg_cluster):
    """The `mesh` fixture with its request store on SQLite (default) or PostgreSQL."""
    if request.param == "postgresql":
        url = new_pg_database(pg_cluster)
        mesh.edit_yaml("govern.yaml", lambda d: d.update(requests={"url": url}))
        assert mesh.govern("request", "migrate").exit_code == 0
    return mesh


def test_approval_grants_at_next_apply_and_expiry_revokes(request_mesh):
    mesh = request_mesh
    role = f"{mesh.prefix}clinical_trial_results_results_read"
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert not mesh.can_read("bob", TABLES["trial"])

    request_id = create(mesh, "bob")
    assert changes(mesh) == [], "a pending request grants nothing"
    result = as_user(mesh, "dave", "request", "approve", request_id, "--reason", "DSA on file")
    assert result.exit_code == 0, result.output
    assert "Approved" in result.output
    assert changes(mesh) == [("add", "bob", "MEMBER", role)]
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert mesh.can_read("bob", TABLES["trial"])

    # the approval expires: written straight into the store, as time would
    with store_of(mesh) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE requests SET expires = :d WHERE id = :id"),
                     {"d": YESTERDAY, "id": request_id})
    assert changes(mesh) == [("remove", "bob", "MEMBER", role)]
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert not mesh.can_read("bob", TABLES["trial"])
    listed = json.loads(as_user(mesh, "bob", "request", "list", "--mine", "--format",
                                "json").stdout)
    assert [(r["id"], r["status"], r["expired"]) for r in listed] == [
        (request_id, "approved", True)]


def test_expiry_by_date_passed_in(mesh):
    request_id = create(mesh, "bob")
    assert as_user(mesh, "grace", "request", "approve", request_id,
                   "--reason", "ok").exit_code == 0
    ids = {a.id for a in pipeline.load_inputs(mesh.root).approvals}
    assert request_id in ids
    later = pipeline.load_inputs(mesh.root, today=FUTURE + dt.timedelta(days=1)).approvals
    assert request_id not in {a.id for a in later}


def test_revoke_by_requester_or_owner_shows_a_revoke_in_plan(mesh):
    role = f"{mesh.prefix}hcp_hcp_master_curated_read"
    first = create(mesh, "alice", product="hcp/hcp_master")
    # carol is in hcp-stewards through hcp-platform > hcp-data-engineers (nested)
    assert as_user(mesh, "carol", "request", "approve", first, "--reason", "ok").exit_code == 0
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    assert mesh.can_read("alice", TABLES["hcp"])
    result = as_user(mesh, "heidi", "request", "revoke", first, "--reason", "project ended")
    assert result.exit_code == 0, result.output
    assert changes(mesh) == [("remove", "alice", "MEMBER", role)]
    # the requester may withdraw their own pending request, but not approve it
    second = create(mesh, "alice", product="hcp/hcp_master")
    assert as_user(mesh, "alice", "request", "approve", second, "--reason", "x").exit_code == 1
    assert as_user(mesh, "alice", "request", "revoke", second, "--reason", "no longer needed"
                   ).exit_code == 0


def test_non_owner_and_self_approval_are_refused(mesh):
    request_id = create(mesh, "dave", "--access", "write")  # dave owns trial_results
    result = as_user(mesh, "dave", "request", "approve", request_id, "--reason", "mine")
    assert result.exit_code == 1
    assert result.stderr == ("error: a requester can never approve or deny their own "
                             "request\n")
    result = as_user(mesh, "alice", "request", "approve", request_id, "--reason", "why not")
    assert result.exit_code == 1
    assert "alice may not approve requests for clinical/trial_results" in result.stderr
    assert "clinical-investigators, heidi" in result.stderr
    result = as_user(mesh, "heidi", "request", "deny", request_id, "--reason", "write is "
                     "for the pipeline")
    assert result.exit_code == 0, result.output
    again = as_user(mesh, "heidi", "request", "approve", request_id, "--reason", "changed mind")
    assert again.exit_code == 1 and "is denied" in again.stderr


def test_create_checks_identity_port_dates_and_the_dsa(mesh):
    base = ["request", "create", "clinical/trial_results", "--purpose", "p"]
    until = ["--until", FUTURE.isoformat()]
    cases = {
        ("mallory", *base, *until, "--accept-dsa"): "is not a user of the directory",
        ("bob", *base, *until): "--accept-dsa",
        ("bob", *base, "--port", "raw", *until, "--accept-dsa"): "has no port 'raw'",
        ("bob", "request", "create", "clinical/nothing", "--purpose", "p", *until,
         "--accept-dsa"): "no product 'clinical/nothing'",
        ("bob", *base, "--until", TODAY.isoformat(), "--accept-dsa"): "not in the future",
        ("bob", *base, "--until", (TODAY + dt.timedelta(days=400)).isoformat(),
         "--accept-dsa"): "more than 365 days ahead",
        ("bob", "request", "create", "clinical/trial_results", "--purpose", " ", *until,
         "--accept-dsa"): "purpose is required",
    }
    for (user, *args), message in cases.items():
        result = as_user(mesh, user, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1, "one line"
    shown = as_user(mesh, "bob", *base, *until)
    assert "https://wiki.example.com/dsa/trial-results" in shown.output
    # DOMAIN/NAME/PORT is the same as --port
    ok = as_user(mesh, "bob", "request", "create", "clinical/trial_results/results",
                 "--purpose", HOSTILE, *until, "--accept-dsa", "--format", "json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["purpose"] == HOSTILE


def test_max_days_is_configurable(mesh):
    mesh.edit_yaml("govern.yaml", lambda d: d.update(requests={"max_days": 30}))
    result = as_user(mesh, "bob", "request", "create", "clinical/trial_results", "--purpose",
                     "p", "--until", (TODAY + dt.timedelta(days=31)).isoformat(),
                     "--accept-dsa")
    assert result.exit_code == 1 and "more than 30 days ahead" in result.stderr


def test_list_mine_and_to_approve(mesh):
    bob = create(mesh, "bob")
    alice = create(mesh, "alice", product="hcp/hcp_master")
    dave = create(mesh, "dave", "--access", "write")

    def ids(user: str, *flags: str) -> set[str]:
        result = as_user(mesh, user, "request", "list", *flags, "--format", "json")
        assert result.exit_code == 0, result.output
        return {r["id"] for r in json.loads(result.stdout)}

    assert ids("bob") == {bob, alice, dave}
    assert ids("bob", "--mine") == {bob}
    assert ids("dave", "--to-approve") == {bob}  # not his own
    assert ids("grace", "--to-approve") == {bob, dave}
    assert ids("heidi", "--to-approve") == {bob, dave, alice}  # steward, and in hcp-stewards
    assert ids("frank", "--to-approve") == set()
    text_out = as_user(mesh, "dave", "request", "list", "--to-approve").output
    assert bob in text_out and "STATUS" in text_out
    shown = as_user(mesh, "bob", "request", "show", bob)
    assert shown.exit_code == 0 and "bob create" in shown.output


def test_migrate_command(mesh, pg_cluster):
    url = new_pg_database(pg_cluster)
    mesh.edit_yaml("govern.yaml", lambda d: d.update(requests={"url": url}))
    # a configured PostgreSQL store must exist and be migrated before a plan reads it
    result = mesh.govern("plan")
    assert result.exit_code == 1 and "govern request migrate" in result.stderr
    result = mesh.govern("request", "migrate")
    assert result.exit_code == 0, result.output
    assert "is at schema " in result.output
    assert "postgres" in result.output
    assert mesh.govern("plan").exit_code == 0


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_webhook_is_notified_and_a_dead_webhook_never_blocks(mesh):
    from govern.engine.opa import free_port

    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        mesh.edit_yaml("govern.yaml", lambda d: d.update(requests={"webhook": {"url": url}}))
        request_id = create(mesh, "bob")
        assert as_user(mesh, "dave", "request", "approve", request_id,
                       "--reason", "ok").exit_code == 0
    finally:
        server.shutdown()
        server.server_close()
    assert [(e["event"], e["who"], e["request"]["id"]) for e in _Hook.received] == [
        ("create", "bob", request_id), ("approve", "dave", request_id)]
    assert _Hook.received[1]["request"]["status"] == "approved"

    dead = f"http://127.0.0.1:{free_port()}/hook"
    mesh.edit_yaml("govern.yaml", lambda d: d.update(
        requests={"webhook": {"url": dead, "timeout_seconds": 2}}))
    second = create(mesh, "frank")
    result = as_user(mesh, "dave", "request", "approve", second, "--reason", "ok")
    assert result.exit_code == 0, result.output


def test_requests_section_is_in_the_config_schema(mesh):
    schema = json.loads(mesh.govern("schema", "--config").stdout)
    assert "requests" in schema["properties"]
    assert {"url", "url_env", "max_days", "webhook"} <= set(
        schema["$defs"]["RequestsConfig"]["properties"])


def test_a_mesh_may_add_approvers_but_never_self_approval(mesh):
    (mesh.root / "policies").mkdir()
    (mesh.root / "policies" / "governance.rego").write_text(
        "package govern.requests\n\nimport data.govern.lib\n\n"
        "permitted(action, actor, _) if {\n"
        '\taction in {"approve", "deny", "revoke"}\n'
        '\tlib.member_of(actor, "data-governance-office")\n'
        "}\n")
    mesh.edit_yaml("govern.yaml", lambda d: d.update(policies=["policies/*.rego"]))
    mesh.edit_yaml("directory.yaml", lambda d: d["groups"].update(
        {"data-governance-office": {"members": ["erin"], "subgroups": []}}))
    assert mesh.govern("validate").exit_code == 0
    bob = create(mesh, "bob", product="hcp/hcp_master")
    result = as_user(mesh, "erin", "request", "approve", bob, "--reason", "office")
    assert result.exit_code == 0, result.output
    own = create(mesh, "erin")
    result = as_user(mesh, "erin", "request", "approve", own, "--reason", "mine")
    assert result.exit_code == 1
    assert "never approve or deny their own request" in result.stderr
