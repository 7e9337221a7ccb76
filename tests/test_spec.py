"""The metamodel: every problem reported at once, with file and field path."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from govern.cli.main import cli
from govern.engine.errors import SpecError
from govern.engine.mesh import load_mesh

from .conftest import EXAMPLE


@pytest.fixture
def mesh_copy(tmp_path):
    root = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".govern"))
    return root


def test_example_mesh_loads(mesh_copy):
    mesh = load_mesh(mesh_copy)
    assert [p.ref for p in mesh.products] == [
        "clinical/trial_results", "commercial/campaign_performance", "digital/web_engagement",
        "hcp/hcp_master", "medical/field_inquiries"]


def test_all_problems_are_reported_with_file_and_path(mesh_copy):
    hcp = mesh_copy / "products/hcp/hcp_master/product.yaml"
    hcp.write_text(hcp.read_text().replace("classification: confidential",
                                           "classification: top-secret")
                   .replace("target: warehouse", "target: lake"))
    web = mesh_copy / "products/digital/web_engagement/product.yaml"
    web.write_text(web.read_text().replace("owner: digital-team\n", "") + "colour: blue\n")
    with pytest.raises(SpecError) as err:
        load_mesh(mesh_copy)
    found = {(p.file, p.path) for p in err.value.problems}
    assert found == {
        ("products/hcp/hcp_master/product.yaml", "classification"),
        ("products/digital/web_engagement/product.yaml", "owner"),
        ("products/digital/web_engagement/product.yaml", "colour"),
    }
    # the bad target is reported once the product is otherwise valid
    hcp.write_text(hcp.read_text().replace("top-secret", "confidential"))
    web.write_text(web.read_text().replace("colour: blue\n", "owner: digital-team\n"))
    with pytest.raises(SpecError) as err:
        load_mesh(mesh_copy)
    assert [str(p) for p in err.value.problems] == [
        "products/hcp/hcp_master/product.yaml: ports[0].target: unknown target 'lake' "
        "(govern.yaml has: warehouse)"]


def test_validate_lists_every_problem_and_exits_1(mesh_copy):
    web = mesh_copy / "products/digital/web_engagement/product.yaml"
    web.write_text(web.read_text().replace("access: open", "access: sometimes")
                   .replace("type: source-aligned", "type: lake"))
    result = CliRunner().invoke(cli, ["--mesh", str(mesh_copy), "validate"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: products/digital/web_engagement/product.yaml: access: Input should be 'open' "
        "or 'approval-required'",
        "error: products/digital/web_engagement/product.yaml: type: Input should be "
        "'source-aligned' or 'consumer-aligned'"]


def test_wrong_package_and_missing_policy_are_problems(mesh_copy):
    policy = mesh_copy / "products/hcp/hcp_master/policy.rego"
    policy.write_text(policy.read_text().replace("package products.hcp.hcp_master",
                                                 "package products.hcp.other"))
    (mesh_copy / "products/digital/web_engagement/policy.rego").unlink()
    with pytest.raises(SpecError) as err:
        load_mesh(mesh_copy)
    messages = sorted(str(p) for p in err.value.problems)
    assert messages == [
        "products/digital/web_engagement/policy.rego: missing policy.rego (package "
        "products.digital.web_engagement)",
        "products/hcp/hcp_master/policy.rego: package: must be `package products.hcp.hcp_master`"
        ", found products.hcp.other"]


def test_rego_compile_errors_are_reported_by_validate(mesh_copy):
    policy = mesh_copy / "products/hcp/hcp_master/policy.rego"
    policy.write_text(policy.read_text() + "\ngrants contains x if { x := unknown_fn(1) }\n")
    result = CliRunner().invoke(cli, ["--mesh", str(mesh_copy), "validate"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: products/hcp/hcp_master/policy.rego: line ")
    assert "unknown_fn" in result.stderr


def test_schema_is_json_schema_of_the_metamodel():
    result = CliRunner().invoke(cli, ["schema"])
    schema = json.loads(result.stdout)
    assert schema["title"] == "govern product.yaml"
    assert {"name", "domain", "owner", "classification", "access", "sharing_agreement",
            "distribution", "type", "ports", "description"} <= set(schema["required"])
