from bam_assets.components.bam_ingest import BamIngestComponent

__all__ = ["BamIngestComponent"]
