"""`govern explain`: which group, attribute or approval gives a user access, computed by OPA."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from govern.cli.main import cli

from .conftest import EXAMPLE


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".govern"))
    return root


def explain(root, *args):
    result = CliRunner().invoke(cli, ["--mesh", str(root), "explain", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def paths(answer, port):
    found = next(p for p in answer["ports"] if p["port"] == port)
    return [[(f["kind"], f["name"]) for f in path] for path in found["paths"]]


def test_nested_group_and_attributes_are_both_named(root):
    answer = explain(root, "alice", "commercial/campaign_performance")
    assert paths(answer, "reporting") == [
        [("group", "campaign-managers")],
        [("attribute", "country"), ("attribute", "department")]]
    group = answer["ports"][0]["paths"][0][0]
    assert group["detail"] == ["campaign-managers", "commercial-analysts", "commercial-team"]
    assert any('lib.members("commercial-analysts")' in r for r in answer["ports"][0]["rules"])


def test_a_group_and_an_attribute_needed_together(root):
    answer = explain(root, "dave", "clinical/trial_results")
    assert paths(answer, "results") == [[("group", "clinical-investigators"),
                                         ("attribute", "department")]]


def test_approval(root):
    answer = explain(root, "frank", "hcp/hcp_master")
    assert paths(answer, "curated") == [[("approval", "req-1")]]


def test_why_not(root):
    answer = explain(root, "grace", "clinical/trial_results")
    assert answer["ports"] == [{"port": "results", "access": [], "granted": False,
                                "paths": [], "rules": []}]
    assert 'lib.members("clinical-investigators")' in answer["policy_mentions"]
    text = CliRunner().invoke(cli, ["--mesh", str(root), "explain", "grace",
                                    "clinical/trial_results"]).stdout
    assert "grace has no access to clinical/trial_results port results" in text
    assert "attribute department = 'Research'" in text


def test_explain_follows_the_directory(root):
    directory = root / "directory.yaml"
    directory.write_text(directory.read_text().replace("members: [alice]", "members: []"))
    answer = explain(root, "alice", "commercial/campaign_performance")
    assert paths(answer, "reporting") == [[("attribute", "country"), ("attribute", "department")]]


def test_unknown_user_or_port_is_an_error(root):
    result = CliRunner().invoke(cli, ["--mesh", str(root), "explain", "zed", "hcp/hcp_master"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: explain: user 'zed' is not in the directory")


def test_a_store_object_is_explained_through_the_one_port_that_holds_it(root):
    answer = explain(root, "frank", "hcp_master.hcp")
    assert answer["product"] == "hcp/hcp_master"
    assert paths(answer, "curated") == [[("approval", "req-1")]]
    result = CliRunner().invoke(cli, ["--mesh", str(root), "explain", "grace",
                                      "warehouse:hcp_master.hcp"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        "hcp/hcp_master port curated (target warehouse) holds it.",
        "grace has no access to hcp/hcp_master port curated"]


def test_an_object_no_port_holds_is_said_so(root):
    result = CliRunner().invoke(cli, ["--mesh", str(root), "explain", "grace", "payroll.salaries"])
    assert result.exit_code == 1
    assert result.stderr == ("error: no port of the mesh holds 'payroll.salaries': govern "
                             "grants nothing on it (a grant there was made by hand)\n")
