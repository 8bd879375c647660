"""bam-assets: stream BAM/CRAM/SAM files into DuckDB as Dagster partitions."""


def connect(db: str | None = None, lake: bool = False):
    """A DuckDB connection to the store, attached read-only as ``lake`` and in use (the reads,
    files and summary tables and the ``sam_tag()`` macros need no prefix): the local store
    ``db`` (default ``$BAM_ASSETS_DB``, else the project's ``data/bam_assets.sqlite``), or with
    ``lake=True`` the Postgres catalog of ``$BAM_ASSETS_LAKE_CATALOG``. The caller closes it::

        import bam_assets
        con = bam_assets.connect()
        con.sql("SELECT key, read_count FROM files").show()
    """
    # Imported here: ``import bam_assets.anything`` runs this file, and the store's imports
    # would slow every start-up.
    from bam_assets.cli.sql import connect as connect_store

    return connect_store(db, lake)
