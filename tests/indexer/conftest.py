"""The indexer tests share one throwaway PostgreSQL server per session (tests/pg.py)."""

from tests.pg import pg_server  # noqa: F401  (the fixture)
