"""The directory index the engine precomputes gives the library the same answers as the
library's own computation over groups and attributes (nesting, cycles, list values)."""

from __future__ import annotations

from govern.engine.opa import OPAServer, find_opa
from govern.engine.evaluate import platform_policies
from govern.identity.base import Group, Snapshot, User


def test_index_and_library_agree():
    users = {u: User(u, attributes={"dept": d, "roles": tuple(r)}) for u, d, r in [
        ("ann", "A", ["x", "y"]), ("bob", "B", ["y"]), ("cid", "A", []), ("dee", "C", ["x"])]}
    groups = {"top": Group("top", frozenset({"ann"}), frozenset({"mid"})),
              "mid": Group("mid", frozenset({"bob"}), frozenset({"low", "top"})),  # a cycle
              "low": Group("low", frozenset({"cid"}), frozenset()),
              "solo": Group("solo", frozenset({"dee"}), frozenset())}
    data = Snapshot(users, groups, "test").to_data()
    with OPAServer(find_opa(), policies=platform_policies()) as server, \
            server.client() as client:
        client.put_data("directory", data)
        queries = {f"members {g}": f'x := data.govern.lib.members("{g}")' for g in groups}
        queries.update({f"where {a}={v}": f'x := data.govern.lib.users_where("{a}", "{v}")'
                        for a, v in [("dept", "A"), ("roles", "x"), ("roles", "y"),
                                     ("dept", "none")]})
        for name, query in queries.items():
            indexed = client.query(query)[0]["x"]
            computed = client.query(query + " with data.directory.index as {}")[0]["x"]
            assert sorted(indexed) == sorted(computed), name
    assert data["index"]["members"]["top"] == ["ann", "bob", "cid"]
    assert data["index"]["attributes"]["roles"]["x"] == ["ann", "dee"]
