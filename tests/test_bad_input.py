"""Bad input is one clear line: every bad file names itself on one line of stderr and exits
1, never a traceback; whatever a value holds (newlines, NUL, a megabyte), the line stays one
line and bounded; directory names get the rules user ids have."""

from __future__ import annotations

import shutil

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govern.cli.main import cli

from .conftest import EXAMPLE

FILES = {"product": "products/digital/web_engagement/product.yaml",
         "govern": "govern.yaml", "directory": "directory.yaml", "approvals": "approvals.yaml"}
LIMIT = 700  # "error: " + the longest line govern prints (engine.errors.MAX_LINE) + its tail


@pytest.fixture
def copy(tmp_path):
    root = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".govern"))
    return root


def govern(root, *args):
    return CliRunner().invoke(cli, ["--mesh", str(root), *args], catch_exceptions=False)


def one_bounded_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert len(lines[0]) <= LIMIT and "\x00" not in lines[0] and "Traceback" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("which", FILES)
def test_invalid_utf8_is_one_line_naming_the_file(copy, which):
    path = copy / FILES[which]
    path.write_bytes(path.read_bytes() + b"\nbroken: \xff\xfe\n")
    line = one_bounded_line(govern(copy, "validate"))
    assert FILES[which] in line or str(path) in line
    assert "not UTF-8 (byte 0xff at offset" in line


@pytest.mark.parametrize("which", FILES)
def test_deeply_nested_yaml_is_one_line_naming_the_file(copy, which):
    path = copy / FILES[which]
    path.write_text("a: " + "[" * 20000 + "]" * 20000 + "\n")
    line = one_bounded_line(govern(copy, "validate"))
    assert FILES[which] in line or str(path) in line
    assert "nested more than 100 levels deep" in line


@pytest.mark.parametrize("which", FILES)
def test_a_yaml_syntax_error_is_one_line_with_file_and_position(copy, which):
    path = copy / FILES[which]
    path.write_text("name: [unclosed\nnext: value\n")
    line = one_bounded_line(govern(copy, "validate"))
    assert FILES[which] in line or str(path) in line
    assert "line 2, column" in line and "invalid YAML" in line


@pytest.mark.parametrize("bad,says", [
    ("bo\nb", "has a control character"), ("bo\rb", "has a control character"),
    ("bo\x00b", "has a control character"), ("x" * (1 << 20), "is 1048576 characters long"),
])
def test_a_hostile_user_id_is_echoed_escaped_and_cut(copy, bad, says):
    path = copy / "directory.yaml"
    data = yaml.safe_load(path.read_text())
    data["users"][bad] = data["users"]["alice"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    line = one_bounded_line(govern(copy, "validate"))
    assert says in line and "directory.yaml" in line


@pytest.mark.parametrize("bad,says", [
    ("", "is empty"), ("   ", "is empty"), ("team\x00", "has a control character"),
    ("line\nbreak", "has a control character"), ("g" * (1 << 20), "characters long"),
])
def test_group_names_follow_the_rules_of_user_ids(copy, bad, says):
    path = copy / "directory.yaml"
    data = yaml.safe_load(path.read_text())
    data["groups"][bad] = {"members": ["alice"], "subgroups": []}
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    line = one_bounded_line(govern(copy, "validate"))
    assert "group name" in line and says in line


@pytest.mark.parametrize("bad,says", [("", "is empty"), ("EU\x00", "has a control character"),
                                      ("v" * 5000, "is 5000 characters long")])
def test_attribute_values_follow_the_rules_too(copy, bad, says):
    path = copy / "directory.yaml"
    data = yaml.safe_load(path.read_text())
    data["users"]["alice"]["attributes"]["country"] = bad
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    line = one_bounded_line(govern(copy, "validate"))
    assert "user alice: attribute country" in line and says in line


# ------------------------------------------------------------------ generated hostile text

HOSTILE = st.one_of(
    st.text(min_size=0, max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x9f), min_size=1, max_size=40),
    st.sampled_from(["\x00", "\n", "\r\n", "'; DROP ROLE postgres; --", "\u2028", "${HOME}",
                     "{{7*7}}", "x" * 5000, "\ud7ff\ue000", "-" * 70, "a\tb"]),
)
PRODUCT_FIELDS = [("description",), ("owner",), ("sharing_agreement",), ("name",),
                  ("ports", 0, "name"), ("ports", 0, "location", "schema"),
                  ("ports", 0, "datasets", 0, "name"),
                  ("ports", 0, "datasets", 0, "columns", 0, "name")]


def _set(data, path, value):
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _check(result):
    """Either valid (exit 0) or one bounded line per problem, exit 1; never a traceback."""
    assert result.exit_code in (0, 1), result.output
    for line in result.stderr.splitlines():
        assert len(line) <= LIMIT and "\x00" not in line, line[:200]
        assert line.startswith(("error: ", "warning: ")), line[:200]
    if result.exit_code == 1:
        assert result.stderr


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(PRODUCT_FIELDS), value=HOSTILE)
def test_hostile_text_in_any_product_field(copy, field, value):
    path = copy / FILES["product"]
    original = path.read_text()
    data = yaml.safe_load(original)
    _set(data, field, value)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        _check(govern(copy, "validate"))
    finally:
        path.write_text(original)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(["user", "display_name", "email", "attr_name", "attr_value",
                              "group", "member"]), value=HOSTILE)
def test_hostile_text_in_any_directory_field(copy, where, value):
    path = copy / "directory.yaml"
    original = path.read_text()
    data = yaml.safe_load(original)
    alice = data["users"]["alice"]
    if where == "user":
        data["users"][value] = alice
    elif where in ("display_name", "email"):
        alice[where] = value
    elif where == "attr_name":
        alice["attributes"][value] = "x"
    elif where == "attr_value":
        alice["attributes"]["country"] = value
    elif where == "group":
        data["groups"][value] = {"members": ["alice"], "subgroups": []}
    else:
        data["groups"]["commercial-analysts"]["members"].append(value)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        _check(govern(copy, "directory", "show", "alice"))
    finally:
        path.write_text(original)


# ------------------------------------------------------------------ names the directory lacks

CAMPAIGN = "products/commercial/campaign_performance"


def test_a_policy_naming_a_group_the_directory_lacks_is_invalid(mesh):
    policy = mesh.root / CAMPAIGN / "policy.rego"
    policy.write_text(policy.read_text().replace('lib.members("commercial-analysts")',
                                                 'lib.members("Commercial-Analysts")'))
    line = one_bounded_line(mesh.govern("validate"))
    assert line == (f"error: {CAMPAIGN}/policy.rego: line 7: lib.members: no group "
                    "'Commercial-Analysts' in the directory "
                    f"{mesh.root / 'directory.yaml'} (did you mean 'commercial-analysts'?)")
    # plan still runs (a group that is gone takes its members' access with it), and says so
    result = mesh.govern("plan")
    assert result.exit_code == 0
    assert (f"warning: {CAMPAIGN}/policy.rego: line 7: lib.members: no group "
            "'Commercial-Analysts'") in result.stdout


@pytest.mark.parametrize("before,after,says", [
    ('lib.users_where("department", "Commercial")', 'lib.users_where("dept", "Commercial")',
     "line 11: lib.users_where: no user of the directory"),
    ('lib.attr(user, "country")', 'lib.attr(user, "Country")',
     "line 12: lib.attr: no user of the directory"),
    ('lib.members("commercial-analysts")', 'lib.domain_members("marketing")',
     "line 7: lib.domain_members: domain marketing's team group 'marketing-team' is not"),
])
def test_policy_attributes_and_domains_the_directory_lacks(copy, before, after, says):
    policy = copy / CAMPAIGN / "policy.rego"
    assert before in policy.read_text()
    policy.write_text(policy.read_text().replace(before, after))
    assert says in one_bounded_line(govern(copy, "validate"))


def test_a_name_in_a_comment_is_not_a_reference(copy):
    policy = copy / CAMPAIGN / "policy.rego"
    policy.write_text(policy.read_text() + '\n# was: lib.members("old-team")\n')
    result = govern(copy, "validate")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("field,value", [("owner", "commercial-taem"),
                                         ("stewards", ["nobody-here"])])
def test_an_owner_or_steward_the_directory_lacks_is_invalid(copy, field, value):
    path = copy / CAMPAIGN / "product.yaml"
    data = yaml.safe_load(path.read_text())
    data[field] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    line = one_bounded_line(govern(copy, "validate"))
    where = "owner" if field == "owner" else "stewards[0]"
    name = value if isinstance(value, str) else value[0]
    assert line == (f"error: {CAMPAIGN}/product.yaml: {where}: {name!r} is neither a user nor "
                    f"a group of the directory {copy / 'directory.yaml'}")
