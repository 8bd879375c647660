"""Building the store: one function from a plain configuration, which everything above storage
calls. Which catalog the store has is the configuration's business, not the caller's."""

import logging
from dataclasses import dataclass
from pathlib import Path

from bam_assets.model.tables import TableNames
from bam_assets.storage.catalogs import catalog_of
from bam_assets.storage.lake import Lake

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreConfig:
    """Where a store is and what it may use.

    ``catalog``: a local catalog file (a path), or ``postgres:<libpq DSN>`` for a Postgres
    catalog. ``data_path``: the folder of the Parquet files; empty: ``<catalog file>.files``
    beside a local catalog (a Postgres catalog needs one). ``threads`` None: every CPU the
    process may use; ``memory_limit`` None: DuckDB's default; ``retry_seconds``: how long a write
    waits for its partition's lock and retries while other writers' commits conflict.
    """

    catalog: str
    data_path: str = ""
    threads: int | None = 1
    memory_limit: str | None = "64MB"
    retry_seconds: float = 300.0


def open_store(
    config: StoreConfig, tables: TableNames | None = None, log: logging.Logger = logger
) -> Lake:
    """The store of ``config`` with the tables ``tables`` (default: unprefixed); nothing is
    opened until a session is."""
    catalog = catalog_of(config.catalog)
    data_dir = Path(config.data_path).absolute() if config.data_path else None
    return Lake(
        catalog,
        data_dir or catalog.default_data_path(),
        tables or TableNames(),
        threads=config.threads,
        memory_limit=config.memory_limit,
        retry_seconds=config.retry_seconds,
        log=log,
    )
