"""The access-request store: requests and their append-only events.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from govern.engine.migrations import append_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("requester", sa.String(256), nullable=False),
        sa.Column("product", sa.String(100), nullable=False),
        sa.Column("port", sa.String(64), nullable=False),
        sa.Column("access", sa.String(8), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("sharing_agreement", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(256), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'approved', 'denied', 'revoked')",
                           name="ck_requests_status"),
        sa.CheckConstraint("access IN ('read', 'write')", name="ck_requests_access"),
    )
    op.create_index("ix_requests_status_expires", "requests", ["status", "expires"])
    op.create_index("ix_requests_requester", "requests", ["requester"])
    # one open request per requester, product, port and access
    op.create_index("uq_requests_one_pending", "requests",
                    ["requester", "product", "port", "access"], unique=True,
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_table(
        "request_events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(16), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(256), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("action IN ('create', 'approve', 'deny', 'revoke')",
                           name="ck_request_events_action"),
    )
    op.create_index("ix_request_events_request", "request_events", ["request_id", "seq"])
    for statement in append_only.statements("request_events", op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE request_events")
        op.execute("DROP FUNCTION request_events_append_only()")
    else:
        op.drop_table("request_events")
    op.drop_table("requests")
