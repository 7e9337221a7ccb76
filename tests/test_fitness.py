"""Fitness functions on the example mesh, against the real PostgreSQL and OPA."""

from __future__ import annotations

import json

import pytest


PRODUCTS = ["clinical/trial_results", "commercial/campaign_performance",
            "digital/web_engagement", "hcp/hcp_master", "medical/field_inquiries"]


def fitness(mesh, *args):
    result = mesh.govern("fitness", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def cell(report, ref, characteristic):
    return report["products"][ref][characteristic]


def reasons(report, ref, characteristic):
    return [c["reason"] for c in cell(report, ref, characteristic)["checks"]
            if c["status"] in ("red", "amber")]


@pytest.fixture
def applied(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    return mesh


def test_example_mesh_is_green_once_published(applied):
    code, report = fitness(applied)
    assert code == 1  # nothing published yet: not discoverable
    for ref, row in report["products"].items():
        for characteristic, value in row.items():
            expected = "red" if characteristic == "discoverable" else "green"
            assert value["status"] == expected, (ref, characteristic, value)
    assert reasons(report, "hcp/hcp_master", "discoverable") == [
        "not published in the catalog (run `govern catalog publish`)"]
    assert applied.govern("catalog", "publish").exit_code == 0
    code, report = fitness(applied)
    assert code == 0
    assert {c["status"] for row in report["products"].values() for c in row.values()} == {
        "green"}
    # a check that does not apply is shown as such, not counted
    freshness = next(c for c in cell(report, "clinical/trial_results", "trustworthy")["checks"]
                     if c["check"] == "trustworthy.freshness")
    assert freshness["status"] == "n/a"


def test_grant_to_public_turns_secure_red(applied):
    with applied.connect() as conn:
        conn.execute("GRANT SELECT ON hcp_master.hcp TO PUBLIC")
        conn.execute("CREATE ROLE fitness_outsider")
        conn.execute("GRANT SELECT ON trial_results.outcomes TO fitness_outsider")
    code, report = fitness(applied)
    assert code == 1
    assert cell(report, "hcp/hcp_master", "secure")["status"] == "red"
    assert reasons(report, "hcp/hcp_master", "secure") == [
        "grants outside govern's management: SELECT on hcp_master.hcp to PUBLIC"]
    assert reasons(report, "clinical/trial_results", "secure") == [
        "grants outside govern's management: SELECT on trial_results.outcomes to fitness_outsider"]
    assert cell(report, "digital/web_engagement", "secure")["status"] == "green"


def test_a_stale_timestamp_turns_trustworthy_red(applied):
    with applied.connect() as conn:
        conn.execute("UPDATE hcp_master.hcp SET updated_at = now() - interval '3 days'")
    code, report = fitness(applied)
    assert code == 1
    assert reasons(report, "hcp/hcp_master", "trustworthy") == [
        "stale against the 24h SLO: hcp last refreshed 72h ago"]


def test_missing_descriptions_turn_self_describing_red_naming_file_and_field(applied):
    path = applied.root / "products/digital/web_engagement/product.yaml"
    path.write_text(path.read_text().replace(
        "{name: page, type: text, description: Path of the page}", "{name: page}"))
    code, report = fitness(applied)
    assert code == 1
    assert reasons(report, "digital/web_engagement", "self-describing") == [
        "columns without a type or description: products/digital/web_engagement/product.yaml: "
        "ports[0].datasets[0].columns[1] (page)"]


def test_two_products_on_one_table_are_refused(applied):
    path = applied.root / "products/commercial/campaign_performance/product.yaml"
    path.write_text(path.read_text().replace("location: {schema: campaign_performance}",
                                             "location: {schema: web_engagement}")
                    .replace("- name: campaign_kpis", "- name: page_views"))
    applied.add_namespace("commercial", "web_engagement")
    result = applied.govern("fitness", "--format", "json")
    assert result.exit_code == 1 and not result.stdout
    assert sorted(result.stderr.splitlines()) == [
        "error: products/commercial/campaign_performance/product.yaml: ports[0].location.schema:"
        " schema 'web_engagement' on target warehouse is also claimed by digital/web_engagement;"
        " each schema belongs to one product",
        "error: products/digital/web_engagement/product.yaml: ports[0].location.schema: schema "
        "'web_engagement' on target warehouse is also claimed by commercial/campaign_performance;"
        " each schema belongs to one product"]


def test_two_targets_on_one_table_are_not_addressable(applied):
    """Two targets of govern.yaml that are one database: each is contained, the addresses
    are not unique, and fitness says so."""
    applied.edit_yaml("govern.yaml", lambda d: d["targets"].update(
        mirror=dict(d["targets"]["warehouse"])))
    applied.add_namespace("commercial", "web_engagement", target="mirror")
    path = applied.root / "products/commercial/campaign_performance/product.yaml"
    path.write_text(path.read_text().replace("location: {schema: campaign_performance}",
                                             "location: {schema: web_engagement}")
                    .replace("target: warehouse", "target: mirror")
                    .replace("- name: campaign_kpis", "- name: page_views"))
    code, report = fitness(applied)
    assert cell(report, "commercial/campaign_performance", "addressable")["status"] == "red"
    (reason,) = reasons(report, "digital/web_engagement", "addressable")
    assert reason.startswith("addresses not unique: postgresql://127.0.0.1:")
    assert reason.endswith("/web_engagement.page_views is also "
                           "commercial/campaign_performance reporting.page_views")


def test_a_format_the_mesh_does_not_allow_is_not_interoperable(applied):
    path = applied.root / "products/digital/web_engagement/product.yaml"
    path.write_text(path.read_text().replace("    target: warehouse\n",
                                             "    target: warehouse\n    format: csv\n"))
    code, report = fitness(applied)
    assert code == 1
    assert reasons(report, "digital/web_engagement", "interoperable") == [
        "formats not allowed by the mesh (table, view): "
        "products/digital/web_engagement/product.yaml: ports[0].format: csv"]


def test_store_down_is_amber_never_green(mesh, monkeypatch):
    from govern.engine.opa import free_port

    monkeypatch.setenv("GOVERN_WAREHOUSE_DSN", f"host=127.0.0.1 port={free_port()} "
                       "user=postgres dbname=x connect_timeout=2")
    code, report = fitness(mesh)
    assert sorted(report["products"]) == PRODUCTS  # the loop below is over all of them
    for ref in report["products"]:
        assert cell(report, ref, "secure")["status"] == "amber"
        assert any("store unreachable: target warehouse: cannot connect" in r
                   for r in reasons(report, ref, "secure"))
    assert cell(report, "hcp/hcp_master", "trustworthy")["status"] == "amber"


def test_a_waiver_holds_until_it_expires(applied):
    with applied.connect() as conn:
        conn.execute("GRANT SELECT ON web_engagement.page_views TO PUBLIC")
    path = applied.root / "products/digital/web_engagement/product.yaml"
    path.write_text(path.read_text() + "waivers:\n  - {check: secure.blocked-by-default, "
                    "reason: public portal data, approver: heidi, expires: 2030-01-31}\n")
    code, report = fitness(applied, "--today", "2030-01-31")
    assert cell(report, "digital/web_engagement", "secure")["status"] == "green"
    (check,) = [c for c in cell(report, "digital/web_engagement", "secure")["checks"]
                if c["check"] == "secure.blocked-by-default"]
    assert check["status"] == "waived" and check["waiver"]["approver"] == "heidi"
    code, report = fitness(applied, "--today", "2030-02-01")
    assert code == 1
    assert cell(report, "digital/web_engagement", "secure")["status"] == "red"
    assert reasons(report, "digital/web_engagement", "secure")[0].endswith(
        "(waiver expired 2030-01-31)")


def test_a_new_rego_check_shows_up_without_code_changes(applied):
    extra = applied.root / "platform" / "owner_is_a_group.rego"
    extra.parent.mkdir()
    extra.write_text('''package govern.fitness

checks contains verdict(ref, "discoverable.owner-is-a-group",
\tp.owner in object.keys(data.directory.groups),
\tsprintf("%s: owner: %s is not a directory group", [p.file, p.owner])) if some ref, p in products
''')
    applied.edit_yaml("govern.yaml", lambda d: d.update(policies=["platform/*.rego"]))
    path = applied.root / "products/hcp/hcp_master/product.yaml"
    path.write_text(path.read_text().replace("owner: hcp-stewards", "owner: heidi"))
    code, report = fitness(applied)
    checks = {c["check"]: c for c in cell(report, "hcp/hcp_master", "discoverable")["checks"]}
    assert checks["discoverable.owner-is-a-group"]["status"] == "red"
    assert checks["discoverable.owner-is-a-group"]["reason"] == (
        "products/hcp/hcp_master/product.yaml: owner: heidi is not a directory group")
    web = cell(report, "digital/web_engagement", "discoverable")
    other = {c["check"]: c for c in web["checks"]}
    assert other["discoverable.owner-is-a-group"]["status"] == "green"
    html = applied.govern("fitness", "--html", str(applied.root / "d.html"))
    assert "discoverable.owner-is-a-group" in (applied.root / "d.html").read_text()
    assert html.exit_code == 1


def test_red_since_runs_and_hostile_text_escaped(applied):
    with applied.connect() as conn:
        conn.execute("GRANT SELECT ON hcp_master.hcp TO PUBLIC")
    path = applied.root / "products/hcp/hcp_master/product.yaml"
    path.write_text(path.read_text().replace(
        "description: Golden record", "description: <script>alert(1)</script> Golden record"))
    for _ in range(2):
        fitness(applied)
    out = applied.root / "dash.html"
    result = applied.govern("fitness", "--html", str(out))
    assert "red since 3 runs" in out.read_text() or "red for 3 runs" in result.stdout
    page = out.read_text()
    assert "red since 3 runs" in page
    assert "<script" not in page
    md = applied.govern("fitness", "--format", "markdown").stdout
    assert md.startswith("### govern fitness") and "🔴" in md


def test_a_check_added_as_rego_with_an_unknown_status_is_refused(applied):
    """A mesh's own check may return anything: a status outside the known set stops the
    report in one line (it would reach the HTML report's class attributes)."""
    extra = applied.root / "policies" / "bad_check.rego"
    extra.parent.mkdir()
    extra.write_text('package govern.fitness\n\nchecks contains {"product": ref, '
                     '"check": "secure.custom", "status": "green\\" onmouseover=\\"x", '
                     '"reason": ""} if some ref, _ in data.mesh.products\n')
    applied.edit_yaml("govern.yaml", lambda d: d.update(policies=["policies/*.rego"]))
    result = applied.govern("fitness", "--html", str(applied.root / "f.html"))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert "unknown status 'green\" onmouseover=\"x'" in result.stderr
    assert not (applied.root / "f.html").exists()
