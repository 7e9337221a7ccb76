"""What guards remember between runs, and the audit log, in the request store's database.

A guard that compares with the last run must see that run even on a fresh CI runner, and a
record it cannot read must stop the run, never switch the guard off. So both live beside the
requests (``requests.url`` in govern.yaml: PostgreSQL for CI), in two tables of migration 0003:

- ``run_state``: one JSON document per key (``directory``: size and fingerprint of the last
  good directory read, for the shrink guard);
- ``audit_log``: append-only (triggers refuse UPDATE and DELETE), one row when a target's
  apply starts and one with its result, each with the whole record as JSON.

The default store (SQLite under ``.govern/``) is created on first use; a configured store must
exist and be migrated (``govern request migrate``), or the run fails.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import (Column, DateTime, Index, Integer, MetaData, String, Table, Text,
                        insert, select, update)

from .errors import StateCorrupt
from .requests import RequestStore, utcnow

if TYPE_CHECKING:
    from .mesh import Mesh

metadata = MetaData()
run_state = Table("run_state", metadata, Column("key", String(100), primary_key=True),
                  Column("value", Text(), nullable=False),
                  Column("updated_at", DateTime(timezone=True), nullable=False))
audit_log = Table("audit_log", metadata, Column("seq", Integer(), primary_key=True),
                  Column("at", DateTime(timezone=True), nullable=False),
                  Column("who", String(256), nullable=False),
                  Column("plan_id", String(64), nullable=False),
                  Column("target", String(64), nullable=False),
                  Column("result", String(16), nullable=False),
                  Column("record", Text(), nullable=False),
                  Index("ix_audit_log_plan", "plan_id", "seq"))


class RunState:
    def __init__(self, store: RequestStore):
        self.store = store
        self.label = store.label

    def get(self, key: str) -> dict[str, Any] | None:
        with self.store.transaction() as conn:
            row = conn.execute(select(run_state.c.value).where(run_state.c.key == key)).first()
        if row is None:
            return None
        try:
            value = json.loads(row.value)
        except ValueError as exc:
            raise StateCorrupt(f"run state {key!r} in {self.label} is not JSON ({exc.msg}); "
                               "refusing to run without its guard") from exc
        if not isinstance(value, dict):
            raise StateCorrupt(f"run state {key!r} in {self.label} is not an object; refusing "
                               "to run without its guard")
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, sort_keys=True)
        now = utcnow()
        with self.store.transaction(write=True) as conn:
            done = conn.execute(update(run_state).where(run_state.c.key == key)
                                .values(value=text, updated_at=now)).rowcount
            if not done:
                conn.execute(insert(run_state).values(key=key, value=text, updated_at=now))

    def audit(self, record: dict[str, Any]) -> None:
        """Append one audit record (it carries who, plan_id, target and result)."""
        with self.store.transaction(write=True) as conn:
            conn.execute(insert(audit_log).values(
                at=dt.datetime.fromisoformat(record["at"]), who=record["who"],
                plan_id=record["plan_id"], target=record["target"], result=record["result"],
                record=json.dumps(record, sort_keys=True)))

    def audit_records(self) -> list[dict[str, Any]]:
        with self.store.transaction() as conn:
            rows = conn.execute(select(audit_log.c.record).order_by(audit_log.c.seq)).fetchall()
        return [json.loads(r.record) for r in rows]


@contextmanager
def open_state(mesh: "Mesh") -> Iterator[RunState]:
    cfg = mesh.config.requests
    default = cfg.url is None and cfg.url_env is None
    store = RequestStore.for_config(cfg, mesh.root, migrate=default)
    try:
        yield RunState(store)
    finally:
        store.close()
