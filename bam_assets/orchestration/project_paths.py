"""Default locations: the bundled example data, the project's local store, and the environment
variables that name the store."""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PROJECT_DIR = PACKAGE_DIR.parent
EXAMPLE_DATA_DIR = PACKAGE_DIR / "example_data"
PROJECT_INSTANCE_CONFIG = PROJECT_DIR / "dagster.yaml"
# The local store's catalog file (its data folder is <file>.files beside it).
DATABASE_ENV_VAR = "BAM_ASSETS_DB"
# local (the default) or postgres, for the component's YAML and the CLI.
BACKEND_ENV_VAR = "BAM_ASSETS_STORE"
# The Postgres catalog: its libpq DSN (no password) and the shared data folder.
LAKE_CATALOG_ENV_VAR = "BAM_ASSETS_LAKE_CATALOG"
LAKE_DATA_PATH_ENV_VAR = "BAM_ASSETS_LAKE_DATA_PATH"


def default_database() -> str:
    """``$BAM_ASSETS_DB``, else ``data/bam_assets.sqlite`` in the project folder."""
    return os.environ.get(DATABASE_ENV_VAR) or str(PROJECT_DIR / "data" / "bam_assets.sqlite")


def default_backend() -> str:
    """``$BAM_ASSETS_STORE``, else ``local``."""
    return os.environ.get(BACKEND_ENV_VAR) or "local"


def default_dagster_home() -> Path:
    """``$DAGSTER_HOME``, else ``.dagster_home`` in the project folder."""
    return Path(os.environ.get("DAGSTER_HOME") or PROJECT_DIR / ".dagster_home")
