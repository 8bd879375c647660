"""Where reads are kept: the only code that talks to a database.

``store`` declares what the rest of the project may ask of a store; ``duckdb_store`` is the
embedded DuckDB file, ``ducklake_store`` the DuckLake on a Postgres catalog. Imports neither
statistics nor Dagster.
"""
