"""The import runs on SQLite and on PostgreSQL (COPY there)."""

from tests.conftest import on_both_backends

backend = on_both_backends()
