"""PostgreSQL: engine-managed roles per product port and access level.

For port P of product D/N the engine manages ``<prefix>D_N_P_read`` (USAGE on the schema,
SELECT on the port's tables) and, when any principal writes, ``<prefix>D_N_P_write`` (adds
INSERT, UPDATE, DELETE). Directory users get memberships of those roles. Users missing in the
store are reported and skipped, unless the target sets ``create_login_roles``; login roles
are created, never dropped. Roles without the prefix are never touched.

The actual state is read in two catalog queries, whatever the mesh size (docs/connectors.md).
Identifiers only ever go through ``psycopg.sql.Identifier``.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import psycopg
from psycopg import sql

from govern.engine.errors import (ApplyFailed, ChangeRefused, ConnectorError, Problem,
                                  StoreUnreachable, first_line)
from govern.engine.mesh import PRODUCT_FILE, Mesh, relative
from govern.engine.models import (Access, AccessLevel, Action, Change, Diagnostic, Grant,
                                  Privilege, fingerprint)
from govern.engine.spec import TargetConfig
from govern.engine.directory import User, template_fields

from .base import Desired, ExecuteReport, Progress

MAX_NAME_BYTES = 63  # NAMEDATALEN - 1; longer names are silently truncated by the server
RESERVED = {"public", "none", "current_user", "session_user", "current_role"}
READ_PRIVILEGES = (Privilege.SELECT,)
WRITE_PRIVILEGES = (Privilege.SELECT, Privilege.INSERT, Privilege.UPDATE, Privilege.DELETE)
_RELKINDS = "('r','v','m','p','f')"

ROLES_QUERY = """
SELECT r.rolname, r.rolcanlogin,
       COALESCE((SELECT array_agg(DISTINCT m.rolname)
                   FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member
                  WHERE am.roleid = r.oid), '{}') AS members,
       shobj_description(r.oid, 'pg_authid') AS comment
  FROM pg_roles r
"""
#: the comment govern puts on every managed role it creates: which mesh the role belongs to
MESH_COMMENT = "govern: mesh "

# Schema and relation privileges held by managed roles, plus which port relations exist.
PRIVILEGES_QUERY = f"""
WITH managed AS (SELECT oid, rolname FROM pg_roles WHERE starts_with(rolname, %(prefix)s))
SELECT 'schema' AS kind, n.nspname AS schema, NULL::name AS name,
       m.rolname AS grantee, a.privilege_type
  FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
  JOIN managed m ON m.oid = a.grantee
UNION ALL
SELECT 'table', n.nspname, c.relname, m.rolname, a.privilege_type
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN LATERAL aclexplode(c.relacl) a
  JOIN managed m ON m.oid = a.grantee
 WHERE c.relkind IN {_RELKINDS}
UNION ALL
SELECT 'exists', n.nspname, c.relname, NULL, NULL
  FROM pg_namespace n
  LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN {_RELKINDS}
 WHERE n.nspname = ANY(%(schemas)s)
"""

# Privileges on port relations held by anyone but their owner and govern's managed roles.
FOREIGN_GRANTS_QUERY = f"""
SELECT n.nspname, c.relname, COALESCE(r.rolname, 'PUBLIC') AS grantee, a.privilege_type
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN LATERAL aclexplode(c.relacl) a
  LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN {_RELKINDS}
   AND a.grantee <> c.relowner
   AND (a.grantee = 0 OR NOT starts_with(r.rolname, %(prefix)s))
"""

COLUMNS_QUERY = """
SELECT n.nspname, c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attnum > 0 AND NOT a.attisdropped
   AND n.nspname || chr(31) || c.relname || chr(31) || a.attname = ANY(%(keys)s)
"""

_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected,
              psycopg.errors.LockNotAvailable)


@dataclass(frozen=True)
class PostgresState:
    roles: frozenset[str]
    memberships: frozenset[tuple[str, str]]  # (managed role, member)
    privileges: frozenset[tuple[str, str, tuple[str, ...]]]  # (grantee, privilege, object)
    schemas: frozenset[str]  # port schemas that exist
    tables: frozenset[tuple[str, str]]  # (schema, relation) that exist in port schemas
    round_trips: int = 0


class PostgresConnector:
    def __init__(self, name: str, config: TargetConfig, prefix: str, mesh_name: str = "mesh"):
        self.name = name
        self.config = config
        self.prefix = prefix
        self.mesh_name = mesh_name  # written into the comment of every managed role
        self._conn: psycopg.Connection | None = None
        self.facts_queries = 0  # queries the last facts() ran

    # ------------------------------------------------------------------ names (pure)
    def role_name(self, product: str, port: str, access: AccessLevel) -> str:
        domain, name = product.split("/")
        return f"{self.prefix}{domain}_{name}_{port}_{access.value}"

    def principal(self, user: User) -> str:
        try:
            return self.config.principal_template.format_map(template_fields(user))
        except (KeyError, IndexError, ValueError) as exc:
            raise ConnectorError(self.name, f"principal_template "
                                 f"{self.config.principal_template!r} for user {user.id}: "
                                 f"no field {exc}") from exc

    def _ports(self, mesh: Mesh, products: Sequence[str] | None = None):
        for product in mesh.products:
            if products is not None and product.ref not in products:
                continue
            for index, port in enumerate(product.spec.ports):
                if port.target == self.name:
                    yield product, index, port

    def check_names(self, mesh: Mesh) -> list[Problem]:
        problems: list[Problem] = self.check_ownership(mesh)
        owners: dict[str, str] = {}
        for product, i, port in self._ports(mesh):
            file = relative(product.folder / PRODUCT_FILE, mesh.root)
            at = f"ports[{i}]"
            names = [(f"{at}.location.schema", port.location.schema_ or "")]
            for j, ds in enumerate(port.datasets):
                names.append((f"{at}.datasets[{j}].name", ds.name))
                names += [(f"{at}.datasets[{j}].columns[{k}].name", c.name)
                          for k, c in enumerate(ds.columns)]
            for path, value in names:
                if len(value.encode()) > MAX_NAME_BYTES:
                    problems.append(Problem(file, path, f"{len(value.encode())} bytes; PostgreSQL "
                                            f"names are at most {MAX_NAME_BYTES}"))
            for access in AccessLevel:
                role = self.role_name(product.ref, port.name, access)
                if len(role.encode()) > MAX_NAME_BYTES:
                    size = len(role.encode())
                    problems.append(Problem(file, f"{at}.name", f"managed role {role} is "
                                            f"{size} bytes; at most {MAX_NAME_BYTES}"))
                where = f"{product.ref} port {port.name}"
                if owners.setdefault(role, where) != where:
                    problems.append(Problem(file, f"{at}.name", f"managed role {role} collides "
                                            f"with {owners[role]}"))
        return problems

    def check_ownership(self, mesh: Mesh) -> list[Problem]:
        """Each store object belongs to exactly one product port, inside its domain's
        namespace, and never to the system: a schema to one product, a table to one port,
        every schema matched by ``domains.<domain>.namespaces.<target>`` in govern.yaml."""
        problems: list[Problem] = []
        schemas: dict[str, list[tuple[str, str, str]]] = {}  # schema -> (ref, file, path)
        tables: dict[tuple[str, str], list[tuple[str, str, str]]] = {}  # -> (port, file, path)
        for product, i, port in self._ports(mesh):
            file = relative(product.folder / PRODUCT_FILE, mesh.root)
            at = f"ports[{i}].location.schema"
            schema = port.location.schema_
            if not schema:
                problems.append(Problem(file, at, f"required for PostgreSQL target {self.name}"))
                continue
            if schema.lower().startswith("pg_") or schema.lower() == "information_schema":
                problems.append(Problem(file, at, f"{schema!r} is a system schema of "
                                        "PostgreSQL; a port can never claim it"))
                continue
            domain = product.spec.domain
            config = mesh.config.domains.get(domain)
            patterns = config.namespaces.get(self.name) if config else None
            if not patterns:
                problems.append(Problem(file, at, f"domain {domain} has no namespace on target "
                                        f"{self.name}: list its schemas in govern.yaml under "
                                        f"domains.{domain}.namespaces.{self.name}"))
            elif not any(fnmatch.fnmatchcase(schema, p) for p in patterns):
                problems.append(Problem(file, at, f"schema {schema!r} is outside domain "
                                        f"{domain}'s namespace on target {self.name} "
                                        f"({', '.join(patterns)})"))
            schemas.setdefault(schema, []).append((product.ref, file, at))
            for j, ds in enumerate(port.datasets):
                tables.setdefault((schema, ds.name), []).append(
                    (f"{product.ref} port {port.name}", file, f"ports[{i}].datasets[{j}].name"))
        problems += self._database_problems(mesh, self._dsn_database())
        for schema, claims in schemas.items():
            refs = sorted({ref for ref, _, _ in claims})
            for ref, file, at in claims if len(refs) > 1 else ():
                others = ", ".join(r for r in refs if r != ref)
                problems.append(Problem(file, at, f"schema {schema!r} on target {self.name} is "
                                        f"also claimed by {others}; each schema belongs to "
                                        "one product"))
        for (schema, table), claims in tables.items():
            if len({ref for ref, _, _ in schemas[schema]}) > 1:
                continue  # reported once, for the schema
            for where, file, at in claims if len(claims) > 1 else ():
                others = ", ".join(w for w, _, _ in claims if w != where) or where
                problems.append(Problem(file, at, f"table {schema}.{table} is also claimed by "
                                        f"{others}; each table belongs to one port"))
        return problems

    def _dsn_database(self) -> str | None:
        dsn = self.config.dsn or os.environ.get(self.config.dsn_env or "") or ""
        try:
            return psycopg.conninfo.conninfo_to_dict(dsn).get("dbname") if dsn else None
        except psycopg.ProgrammingError:
            return None

    def _database_problems(self, mesh: Mesh, database: str | None) -> list[Problem]:
        """A port's ``location.database`` must be the database this target connects to (one
        connection per target): granting inside another database without a word would be a
        grant nobody asked for. Unknown until connected when the DSN names none."""
        problems = []
        for product, i, port in self._ports(mesh):
            wanted = port.location.database
            if wanted is not None and database is not None and wanted != database:
                problems.append(Problem(relative(product.folder / PRODUCT_FILE, mesh.root),
                                        f"ports[{i}].location.database",
                                        f"{wanted!r}, but target {self.name} connects to "
                                        f"database {database!r}; give the port a target of "
                                        "its own for that database"))
        return problems

    def check_principal(self, user: User) -> str | None:
        """Why a directory user cannot be a role of this store, or None."""
        role = self.principal(user)
        if len(role.encode()) > MAX_NAME_BYTES:
            return f"role name {role!r} is {len(role.encode())} bytes; at most {MAX_NAME_BYTES}"
        if role.startswith(self.prefix):
            return f"role name {role!r} starts with the managed prefix {self.prefix!r}"
        return _reserved(role)

    # ------------------------------------------------------------------ desired (pure)
    def desired(self, access: Iterable[Access], mesh: Mesh, principals: Mapping[str, User],
                state: PostgresState | None, products: Sequence[str] | None) -> Desired:
        grants: set[Grant] = set()
        notes: list[Diagnostic] = []
        ports = {(p.ref, port.name): port for p, _, port in self._ports(mesh, products)}
        used: set[tuple[str, str, AccessLevel]] = {(r, n, AccessLevel.READ) for r, n in ports}
        for item in access:
            if (item.product, item.port) in ports:
                used.add((item.product, item.port, item.access))

        for product, port_name, level in sorted(used):
            port = ports[(product, port_name)]
            role = self.role_name(product, port_name, level)
            schema = port.location.schema_ or ""
            grants.add(Grant(self.name, role, Privilege.EXISTS, ("role", role)))
            if state is not None and schema not in state.schemas:
                notes.append(Diagnostic("warning", f"{product} port {port_name}",
                                        f"schema {schema!r} does not exist in target "
                                        f"{self.name}; its grants are skipped"))
                continue
            for grant in self._role_grants(role, port, level):
                table = grant.object[1:] if grant.object[0] == "table" else None
                if table and state is not None and table not in state.tables:
                    if level is AccessLevel.READ and grant.privilege is Privilege.SELECT:
                        notes.append(Diagnostic("warning", f"{product} port {port_name}",
                                                f"table {schema}.{table[1]} does not exist in "
                                                f"target {self.name}; skipped"))
                    continue
                grants.add(grant)

        refused: set[str] = set()
        for item in sorted(access):
            if (item.product, item.port) not in ports or item.principal in refused:
                continue
            user = principals.get(item.principal)
            if user is None:
                continue
            reason = self.check_principal(user)
            if reason:
                refused.add(item.principal)
                notes.append(Diagnostic("error", f"principal {item.principal}", reason))
                continue
            member = self.principal(user)
            if state is not None and member not in state.roles:
                if not self.config.create_login_roles:
                    notes.append(Diagnostic("warning", f"principal {item.principal}",
                                            f"no role {member!r} in target {self.name}; "
                                            "skipped (set create_login_roles to create it)"))
                    continue
            if self.config.create_login_roles:
                grants.add(Grant(self.name, member, Privilege.EXISTS, ("role", member)))
            role = self.role_name(item.product, item.port, item.access)
            grants.add(Grant(self.name, member, Privilege.MEMBER, ("role", role)))
        return Desired(frozenset(grants), tuple(_dedupe(notes)))

    def _role_grants(self, role: str, port, level: AccessLevel) -> list[Grant]:
        """What a port role holds: USAGE on the port's schema, privileges on its datasets."""
        schema = port.location.schema_ or ""
        privileges = WRITE_PRIVILEGES if level is AccessLevel.WRITE else READ_PRIVILEGES
        return [Grant(self.name, role, Privilege.USAGE, ("schema", schema)),
                *(Grant(self.name, role, p, ("table", schema, ds.name))
                  for ds in port.datasets for p in privileges)]

    # ------------------------------------------------------------------ scope (pure)
    def scope(self, mesh: Mesh) -> "Scope":
        """Everything this connector may ever add on this target for ``mesh``: the port roles
        and exactly the privileges each holds. Removes are allowed on managed roles only."""
        roles: set[str] = set()
        privileges: set[Grant] = set()
        for product, _, port in self._ports(mesh):
            for level in AccessLevel:
                role = self.role_name(product.ref, port.name, level)
                roles.add(role)
                privileges.update(self._role_grants(role, port, level))
        return Scope(frozenset(roles), frozenset(privileges), self.other_targets_roles(mesh))

    def other_targets_roles(self, mesh: Mesh) -> frozenset[str]:
        """Port roles of the mesh's other targets. Roles are cluster-wide in PostgreSQL, so
        another target on the same cluster holds them: that target's to manage, not this."""
        return frozenset(self.role_name(p.ref, port.name, level) for p in mesh.products
                         for port in p.spec.ports if port.target != self.name
                         for level in AccessLevel)

    def out_of_scope(self, change: Change, scope: "Scope") -> str | None:
        """Why ``change`` is outside what govern manages on this target, or None."""
        g = change.grant
        add = change.action is Action.ADD
        managed = g.principal.startswith(self.prefix)
        touched = g.object[1] if g.privilege is Privilege.MEMBER and len(g.object) == 2 \
            else g.principal
        if touched in scope.foreign:
            return f"role {touched} belongs to a port of another target"
        if g.privilege is Privilege.EXISTS:
            if not add:
                return None if managed else f"role {g.principal} is not managed"
            if managed:
                return None if g.principal in scope.roles else \
                    f"role {g.principal} belongs to no port of the mesh"
            if not self.config.create_login_roles:
                return f"creating login role {g.principal} (create_login_roles is off)"
            return _reserved(g.principal)
        if g.privilege is Privilege.MEMBER:
            role = g.object[1] if len(g.object) == 2 and g.object[0] == "role" else ""
            if not role.startswith(self.prefix):
                return f"role {role or g.object!r} is not managed"
            if managed or _reserved(g.principal):
                return f"member {g.principal} is not a directory user's role"
            if add and role not in scope.roles:
                return f"role {role} belongs to no port of the mesh"
            return None
        if not managed:
            return f"grantee {g.principal} is not a managed role"
        if g.object[:1] not in (("schema",), ("table",)):
            return f"object kind {g.object[0]!r} is not managed"
        if add and g not in scope.privileges:
            return f"{g.privilege.value} on {'.'.join(g.object[1:])} is not declared by " \
                f"{g.principal}'s port"
        return None

    # ------------------------------------------------------------------ actual (pure)
    def scope_roles(self, mesh: Mesh, products: Sequence[str] | None) -> set[str] | None:
        if products is None:
            return None
        return {self.role_name(p.ref, port.name, level)
                for p, _, port in self._ports(mesh, products) for level in AccessLevel}

    def actual(self, state: PostgresState, desired: Desired, products: Sequence[str] | None,
               mesh: Mesh) -> frozenset[Grant]:
        scope = self.scope_roles(mesh, products)
        others = self.other_targets_roles(mesh)

        def managed(role: str) -> bool:
            return role.startswith(self.prefix) and role not in others and \
                (scope is None or role in scope)

        grants = {Grant(self.name, r, Privilege.EXISTS, ("role", r))
                  for r in state.roles if managed(r)}
        grants.update(Grant(self.name, member, Privilege.MEMBER, ("role", role))
                      for role, member in state.memberships if managed(role))
        grants.update(Grant(self.name, grantee, Privilege(priv), obj)
                      for grantee, priv, obj in state.privileges if managed(grantee))
        # login roles the engine would create: present only when they exist already
        grants.update(g for g in desired.grants
                      if g.privilege is Privilege.EXISTS and not g.principal.startswith(self.prefix)
                      and g.principal in state.roles)
        return frozenset(grants)

    def state_fingerprint(self, state: PostgresState, actual: frozenset[Grant]) -> str:
        return fingerprint([*(g.to_dict() for g in actual),
                            *(["schema", s] for s in state.schemas),
                            *(["table", s, t] for s, t in state.tables)])

    # ------------------------------------------------------------------ I/O: read
    def _connect(self) -> psycopg.Connection:
        if self._conn is not None:
            return self._conn
        dsn = self.config.dsn or (os.environ.get(self.config.dsn_env or "") or None)
        if not dsn:
            where = f"${self.config.dsn_env}" if self.config.dsn_env else "dsn / dsn_env"
            raise StoreUnreachable(self.name, f"no connection string: set {where}")
        try:
            self._conn = psycopg.connect(dsn, autocommit=True,
                                         connect_timeout=self.config.connect_timeout_seconds,
                                         application_name="govern")
        except psycopg.Error as exc:
            raise StoreUnreachable(self.name, f"cannot connect: {first_line(exc)}") from exc
        return self._conn

    def read(self, mesh: Mesh | None = None) -> PostgresState:
        schemas = sorted({port.location.schema_ or "" for _, _, port in self._ports(mesh)}) \
            if mesh is not None else []
        conn = self._connect()
        if mesh is not None:
            wrong = self._database_problems(mesh, conn.info.dbname)
            if wrong:
                raise ChangeRefused(self.name, str(wrong[0]))
        try:
            with conn.cursor() as cur:
                cur.execute(ROLES_QUERY)
                role_rows = cur.fetchall()
                cur.execute(PRIVILEGES_QUERY, {"prefix": self.prefix, "schemas": schemas})
                priv_rows = cur.fetchall()
        except psycopg.Error as exc:
            raise StoreUnreachable(self.name,
                                   f"cannot read the catalog: {first_line(exc)}") from exc
        if mesh is not None:
            self._check_mesh(mesh, role_rows)
        roles = frozenset(r[0] for r in role_rows)
        memberships = frozenset((r[0], m) for r in role_rows if r[0].startswith(self.prefix)
                                for m in r[2])
        privileges, present, tables = set(), set(), set()
        for kind, schema, name, grantee, privilege in priv_rows:
            if kind == "schema":
                privileges.add((grantee, privilege, ("schema", schema)))
            elif kind == "table":
                privileges.add((grantee, privilege, ("table", schema, name)))
            else:
                present.add(schema)
                if name is not None:
                    tables.add((schema, name))
        return PostgresState(roles, memberships, frozenset(privileges), frozenset(present),
                             frozenset(tables), round_trips=2)

    def _check_mesh(self, mesh: Mesh, role_rows) -> None:
        """Refuse a cluster where roles under our prefix belong to another mesh (their
        comment names it): two meshes sharing a prefix would revoke each other's grants."""
        mine = f"{MESH_COMMENT}{mesh.config.name}"
        for name, _, _, comment in role_rows:
            if name.startswith(self.prefix) and comment and comment.startswith(MESH_COMMENT) \
                    and comment != mine:
                other = comment[len(MESH_COMMENT):]
                raise ChangeRefused(self.name, f"role {name} belongs to mesh {other!r}, not "
                                     f"{mesh.config.name!r} (its comment says so): two meshes "
                                     f"share managed_prefix {self.prefix!r} on this cluster; "
                                     "give each mesh a prefix of its own")

    # ------------------------------------------------------------------ I/O: fitness facts
    def address_base(self) -> str | None:
        if self.config.address:
            return self.config.address.rstrip("/")
        dsn = self.config.dsn or os.environ.get(self.config.dsn_env or "") or ""
        try:
            info = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            return None
        host, db = info.get("host"), info.get("dbname")
        if not host or not db or str(host).startswith("/"):
            return None
        return f"postgresql://{host}:{info.get('port') or 5432}/{db}"

    def addresses(self, mesh: Mesh) -> dict[str, dict[str, dict[str, str | None]]]:
        """``postgresql://host:port/db/schema.table`` of every dataset on this target (pure:
        from the target's settings, no connection)."""
        base = self.address_base()
        out: dict[str, dict[str, dict[str, str | None]]] = {}
        for product, _, port in self._ports(mesh):
            schema = port.location.schema_ or ""
            out.setdefault(product.ref, {})[port.name] = {
                d.name: f"{base}/{schema}.{d.name}" if base else None for d in port.datasets}
        return out

    def facts(self, mesh: Mesh, state: PostgresState) -> dict[str, dict]:
        """What fitness checks need from the store, per product: who else holds privileges on
        its relations (PUBLIC, unmanaged roles), which datasets exist, how fresh they are, and
        their addresses. At most three queries, whatever the mesh size (the number run is kept
        in ``facts_queries``)."""
        ports = list(self._ports(mesh))
        self.facts_queries = 1
        schemas = sorted({port.location.schema_ or "" for _, _, port in ports})
        conn = self._connect()
        out: dict[str, dict] = {}
        addresses = self.addresses(mesh)
        for product, _, port in ports:
            f = out.setdefault(product.ref, {"foreign_grants": [], "existing": [],
                                             "freshness": {}, "addresses": {}})
            schema = port.location.schema_ or ""
            f["existing"] += [d.name for d in port.datasets if (schema, d.name) in state.tables]
            f["addresses"][port.name] = addresses[product.ref][port.name]
        try:
            rows = conn.execute(FOREIGN_GRANTS_QUERY, {"schemas": schemas,
                                                       "prefix": self.prefix}).fetchall()
        except psycopg.Error as exc:
            raise StoreUnreachable(self.name, f"cannot read privileges: {first_line(exc)}") from exc
        owners = {(port.location.schema_ or "", d.name): product.ref
                  for product, _, port in ports for d in port.datasets}
        for schema, table, grantee, privilege in rows:
            ref = owners.get((schema, table))
            if ref:
                out[ref]["foreign_grants"].append({"dataset": f"{schema}.{table}",
                                                   "grantee": grantee, "privilege": privilege})
        timed = [(product.ref, port.location.schema_ or "", d)
                 for product, _, port in ports for d in port.datasets
                 if d.freshness_column and (port.location.schema_ or "", d.name) in state.tables]
        if timed:  # only columns that exist go into the query; the others are reported
            self.facts_queries += 1
            try:
                present = set(conn.execute(COLUMNS_QUERY, {
                    "keys": [f"{schema}\x1f{d.name}\x1f{d.freshness_column}"
                             for _, schema, d in timed]}).fetchall())
            except psycopg.Error as exc:
                raise StoreUnreachable(self.name,
                                       f"cannot read columns: {first_line(exc)}") from exc
            for ref, schema, d in timed:
                if (schema, d.name, d.freshness_column) not in present:
                    out[ref]["freshness"][d.name] = {
                        "age_seconds": None,
                        "error": f"column {d.freshness_column} not in {schema}.{d.name}"}
            timed = [t for t in timed if (t[1], t[2].name, t[2].freshness_column) in present]
        if timed:
            self.facts_queries += 1
            parts = [sql.SQL("SELECT {}::text, EXTRACT(EPOCH FROM now() - max({})::timestamptz)"
                             "::float8 FROM {}").format(
                sql.Literal(f"{ref}\x1f{d.name}"), sql.Identifier(d.freshness_column),
                sql.Identifier(schema, d.name)) for ref, schema, d in timed]
            try:
                for key, age in conn.execute(sql.SQL(" UNION ALL ").join(parts)).fetchall():
                    ref, name = key.split("\x1f")
                    out[ref]["freshness"][name] = {"age_seconds": age}
            except psycopg.Error as exc:
                raise StoreUnreachable(self.name, f"cannot measure freshness: "
                                     f"{first_line(exc)}") from exc
        return out

    # ------------------------------------------------------------------ render (pure)
    def statement(self, change: Change) -> sql.Composed:
        g = change.grant
        add = change.action is Action.ADD
        who = sql.Identifier(g.principal)
        if g.privilege is Privilege.EXISTS:
            if not add:
                if not g.principal.startswith(self.prefix):
                    raise ChangeRefused(self.name, f"refusing to drop unmanaged role {g.principal}")
                return sql.SQL("DROP ROLE {}").format(who)
            if not g.principal.startswith(self.prefix):
                return sql.SQL("CREATE ROLE {} LOGIN").format(who)
            return sql.SQL("CREATE ROLE {} NOLOGIN; COMMENT ON ROLE {} IS {}").format(
                who, who, sql.Literal(f"{MESH_COMMENT}{self.mesh_name}"))
        if g.privilege is Privilege.MEMBER:
            role = sql.Identifier(g.object[1])
            template = "GRANT {} TO {}" if add else "REVOKE {} FROM {}"
            return sql.SQL(template).format(role, who)
        kind, *names = g.object
        target = sql.Identifier(*names)
        keyword = {"schema": "SCHEMA", "table": "TABLE"}[kind]
        template = "GRANT {} ON {} {} TO {}" if add else "REVOKE {} ON {} {} FROM {}"
        return sql.SQL(template).format(sql.SQL(g.privilege.value), sql.SQL(keyword), target, who)

    def render(self, changes: Sequence[Change]) -> list[str]:
        return [self.statement(c).as_string(None) for c in changes]

    # ------------------------------------------------------------------ I/O: execute
    def batches(self, changes: Sequence[Change]) -> list[list[Change]]:
        """Consecutive changes of one step (revoke memberships, revoke privileges, drop roles,
        create roles, grant privileges, grant memberships), cut at ``batch_size``. A batch never
        spans two steps, so a failure rolls back only its own step's batch."""
        def step(change: Change) -> tuple[str, str]:
            kind = change.grant.privilege
            part = "role" if kind is Privilege.EXISTS else \
                "member" if kind is Privilege.MEMBER else "privilege"
            return change.action.value, part

        out: list[list[Change]] = []
        for _, group in itertools.groupby(changes, key=step):
            items = list(group)
            size = self.config.batch_size
            out += [items[i:i + size] for i in range(0, len(items), size)]
        return out

    def execute(self, changes: Sequence[Change], mesh: Mesh, progress: Progress | None = None,
                attempts: int = 3) -> ExecuteReport:
        """Run ``changes`` in batches. Every change is first checked against the managed
        scope of ``mesh`` (whatever made the changes: a saved plan, a bug); one outside it
        stops the whole run before any statement."""
        scope = self.scope(mesh)
        for change in changes:
            reason = self.out_of_scope(change, scope)
            if reason:
                raise ChangeRefused(self.name, f"refusing a change outside managed scope: "
                                     f"{change.action.value} {change.grant.describe()}: {reason}")
        report = ExecuteReport(self.name)
        conn = self._connect()
        for changes_batch in self.batches(changes):
            batch = [self.statement(c) for c in changes_batch]
            for attempt in range(1, attempts + 1):
                try:
                    with conn.transaction(), conn.cursor() as cur:
                        cur.execute(sql.SQL(";\n").join(batch))
                    break
                except _RETRYABLE as exc:
                    if attempt == attempts:
                        report.error = (f"batch {report.batches + 1} failed {attempts} times: "
                                        f"{first_line(exc)}")
                        raise ApplyFailed(self.name, report.error,
                                             executed=report.executed) from exc
                    time.sleep(0.2 * attempt)
                except psycopg.Error as exc:
                    failed = self._locate(conn, batch)
                    report.error = first_line(exc)
                    raise ApplyFailed(self.name, report.error, failed,
                                         report.executed) from exc
            report.batches += 1
            report.executed += [s.as_string(None) for s in batch]
            if progress:
                progress(len(batch))
        return report

    @staticmethod
    def _locate(conn: psycopg.Connection, batch: list[sql.Composed]) -> str | None:
        """Which statement of a failed batch fails (replayed one by one, then rolled back)."""
        try:
            with conn.transaction(force_rollback=True), conn.cursor() as cur:
                for stmt in batch:
                    try:
                        with conn.transaction():
                            cur.execute(stmt)
                    except psycopg.Error:
                        return stmt.as_string(None)
        except psycopg.Error:
            return None
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True)
class Scope:
    roles: frozenset[str]  # every port role of the mesh on this target
    privileges: frozenset[Grant]  # exactly what those roles may hold
    foreign: frozenset[str] = frozenset()  # port roles of the mesh's other targets


def _reserved(role: str) -> str | None:
    if role.lower() in RESERVED or role.lower().startswith("pg_") or "\x00" in role:
        return f"role name {role!r} is reserved in PostgreSQL"
    return None


def _dedupe(items: list[Diagnostic]) -> list[Diagnostic]:
    return list(dict.fromkeys(items))
