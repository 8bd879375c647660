"""bam-assets: stream BAM/CRAM/SAM files into DuckDB as Dagster partitions."""
