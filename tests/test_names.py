"""Hostile names are quoted by the driver or rejected at validate; never injected."""

from __future__ import annotations

from psycopg import sql

SCHEMA = 'Sch"ema; DROP SCHEMA hcp_master CASCADE;--'
TABLE = "tä ble'); DROP TABLE web_engagement.page_views; --"
USER = "o'brien; drop role alice"


def add_hostile_product(mesh, schema=SCHEMA, table=TABLE, user=USER, column="näme"):
    folder = mesh.root / "products/hostile/names"
    folder.mkdir(parents=True)
    mesh.add_namespace("hostile", schema)
    (folder / "product.yaml").write_text(f"""\
name: names
domain: hostile
description: A product whose store names try to break out of their quotes.
owner: alice
classification: internal
access: approval-required
sharing_agreement: none
distribution: none
type: source-aligned
ports:
  - name: main
    target: warehouse
    location: {{schema: {_q(schema)}}}
    datasets:
      - name: {_q(table)}
        columns: [{{name: {_q(column)}}}]
""")
    (folder / "policy.rego").write_text(f"""\
package products.hostile.names

import data.govern.lib

grants contains lib.read({_rego(user)}, "main")
""")
    mesh.edit_yaml("directory.yaml", lambda d: d["users"].update(
        {user: {"display_name": "Hostile", "attributes": {"employment_type": "contractor"}}}))


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rego(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_hostile_names_are_quoted_not_injected(mesh):
    add_hostile_product(mesh)
    with mesh.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE TABLE {} ({} text)").format(
            sql.Identifier(SCHEMA, TABLE), sql.Identifier("näme")))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(USER)))
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    quoted = sql.Identifier(SCHEMA, TABLE).as_string(None)
    assert mesh.can_read(USER, f"{quoted}")  # the login role was created, quoted
    assert not mesh.can_read("alice", quoted)
    # nothing the names tried to run has run
    with mesh.connect() as conn:
        assert conn.execute("SELECT count(*) FROM web_engagement.page_views").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM hcp_master.hcp").fetchone()[0] == 2
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'alice'").fetchone()
    assert mesh.govern("plan", "--detailed-exitcode").exit_code == 0


def test_names_longer_than_postgres_allows_are_rejected_at_validate(mesh):
    add_hostile_product(mesh, schema="s" * 63, table="é" * 32)  # 64 bytes, 32 characters
    result = mesh.govern("validate")
    assert result.exit_code == 1
    assert ("error: products/hostile/names/product.yaml: ports[0].datasets[0].name: 64 bytes; "
            "PostgreSQL names are at most 63") in result.stderr


def test_a_user_name_too_long_for_postgres_is_rejected(mesh):
    add_hostile_product(mesh, schema="hostile", table="t", user="u" * 64)
    for command in ("validate", "plan"):
        result = mesh.govern(command)
        assert result.exit_code == 1
        assert f"principal {'u' * 64}" in result.stderr and "at most 63" in result.stderr


def test_managed_role_names_that_collide_are_rejected(mesh):
    for domain, name in (("ab_c", "d"), ("ab", "c_d")):
        folder = mesh.root / f"products/{domain}/{name}"
        folder.mkdir(parents=True)
        (folder / "product.yaml").write_text(f"""\
name: {name}
domain: {domain}
description: collides
owner: alice
classification: internal
access: approval-required
sharing_agreement: none
distribution: none
type: source-aligned
ports: [{{name: main, target: warehouse, location: {{schema: s}}, datasets: [{{name: t}}]}}]
""")
        (folder / "policy.rego").write_text(
            f"package products.{domain}.{name}\n\ngrants := set()\n")
    result = mesh.govern("validate")
    assert result.exit_code == 1
    assert f"managed role {mesh.prefix}ab_c_d_main_read collides with" in result.stderr
