"""The built-in catalog: one entry per published product, full-text searchable.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_entries",
        sa.Column("ref", sa.String(200), primary_key=True),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
        sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE catalog_search USING fts5(ref UNINDEXED, body)")
    else:
        op.execute("ALTER TABLE catalog_entries ADD COLUMN search tsvector")
        op.execute("CREATE INDEX catalog_entries_search ON catalog_entries USING gin (search)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE catalog_search")
    op.drop_table("catalog_entries")
