"""Where reads are kept: the only code that talks to a database.

``store`` declares what the rest of the project may ask of a store and ``config.open_store``
builds one: a DuckLake (``lake``) whose catalog is a local SQLite file or a Postgres database
(``catalogs``, the only place they differ). Imports neither statistics nor Dagster.
"""
