"""Alembic environment: always given an open connection by ``engine/requests.py``.

There is no alembic.ini: ``RequestStore.migrate()`` builds the configuration and passes its
connection (inside its own transaction) as ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the request-store migrations through `govern request migrate`")

context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
