"""Every store test that asks for a database runs on SQLite and on PostgreSQL."""

from tests.conftest import on_both_backends

backend = on_both_backends()
