"""The pure middle: diff and plan serialisation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from govern.engine.diff import diff
from govern.engine.models import Action, Change, Diagnostic, Grant, Privilege
from govern.engine.plan import Plan, TargetPlan, render_markdown, render_text

grants = st.builds(
    Grant, target=st.just("pg"), principal=st.sampled_from(["dp_a_read", "dp_b_read", "alice"]),
    privilege=st.sampled_from(list(Privilege)),
    object=st.sampled_from([("table", "s", "t"), ("schema", "s"), ("role", "dp_a_read")]))


@given(st.frozensets(grants), st.frozensets(grants))
def test_applying_the_diff_gives_the_desired_state(desired, actual):
    state = set(actual)
    for change in diff(desired, actual):
        (state.add if change.action is Action.ADD else state.discard)(change.grant)
    assert state == desired
    assert diff(desired, frozenset(state)) == ()


@given(st.frozensets(grants), st.frozensets(grants))
def test_removes_come_before_adds_and_roles_are_created_first_dropped_last(desired, actual):
    changes = diff(desired, actual)
    actions = [c.action for c in changes]
    assert actions == sorted(actions, key=lambda a: a is Action.ADD)
    adds = [c.grant.privilege for c in changes if c.action is Action.ADD]
    removes = [c.grant.privilege for c in changes if c.action is Action.REMOVE]
    if Privilege.EXISTS in adds:
        assert adds[: adds.count(Privilege.EXISTS)] == [Privilege.EXISTS] * adds.count(
            Privilege.EXISTS)
    if Privilege.EXISTS in removes:
        assert removes[-removes.count(Privilege.EXISTS):] == [Privilege.EXISTS] * removes.count(
            Privilege.EXISTS)


def test_plan_round_trips_through_json(tmp_path):
    change = Change(Action.ADD, Grant("pg", "dp_a_read", Privilege.SELECT, ("table", "s", "t")))
    plan = Plan(mesh="m", inputs_fingerprint="f", policy_commit="c",
                targets=(TargetPlan("pg", "fp", 3, (change,), ('GRANT SELECT ON TABLE "s"."t" '
                                                               'TO "dp_a_read"',), 2),),
                products=("d/p",), diagnostics=(Diagnostic("warning", "d/p", "x"),),
                decision_ids=("id1",))
    path = tmp_path / "plan.json"
    plan.save(path)
    assert Plan.load(path) == plan
    assert "1 to add, 0 to remove" in render_text(plan)
    assert "| + | SELECT on table s.t to dp_a_read |" in render_markdown(plan)


@pytest.mark.parametrize("edit", [
    lambda d: d.update(signature=7), lambda d: d.update(targets="x"),
    lambda d: d["targets"][0]["changes"].append({"action": "add"}),
    lambda d: d.update(plan_id=None), lambda d: d.pop("created_at"),
])
def test_a_malformed_or_edited_plan_file_is_one_plan_error(tmp_path, edit):
    from govern.engine.errors import PlanError

    grant = Grant("warehouse", "dp_x_read", Privilege.EXISTS, ("role", "dp_x_read"))
    plan = Plan("mesh", "f" * 64, "abc", (TargetPlan("warehouse", "s", 0,
                                                     (Change(Action.ADD, grant),),
                                                     ("CREATE ROLE x",)),))
    data = plan.to_dict()
    assert Plan.from_dict(json.loads(json.dumps(data))) == plan  # the file as saved loads
    edit(data)
    with pytest.raises(PlanError):
        Plan.from_dict(data)
