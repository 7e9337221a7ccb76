"""Alembic migrations of the access-request store (engine/requests.py runs them)."""
