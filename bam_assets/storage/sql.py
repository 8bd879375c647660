"""The one way a text becomes an SQL literal, for the few statements that take no parameters
(``ATTACH``, ``LOAD``, ``COPY … TO``, ``COMMENT ON``); values everywhere else are parameters."""


def sql_literal(text: str) -> str:
    """``text`` as a single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
