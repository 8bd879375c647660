"""``BamIngestComponent``: one folder-to-store ingest, configured in a ``defs.yaml``.

Its attributes are ``IngestSettings`` (``orchestration/settings.py``): every option is declared
there once, with its default and description.
"""

import dagster as dg

from bam_assets.orchestration.definitions import build_instance_definitions
from bam_assets.orchestration.settings import IngestSettings


class BamIngestComponent(IngestSettings, dg.Component, dg.Resolvable):
    """Streams the BAM/CRAM/SAM files under ``roots`` into the store, one partition per file.

    Relative paths are resolved against the project folder. An empty ``store.database`` means
    ``$BAM_ASSETS_DB`` or the project's local store; empty ``roots`` mean the bundled examples.
    """

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_instance_definitions(self.resolved(context.project_root))
