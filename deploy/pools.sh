#!/bin/sh
# Sets the limit of every pool bam-assets uses, explicitly, in the instance at $DAGSTER_HOME
# (deploy/dagster.yaml). Run once per deployment, before the first run, and again to change them.
#   duckdb_writer     1: one process at a time may write a DuckDB file
#   lake_writer       $BAM_ASSETS_LAKE_WRITERS (4): concurrent writers of the lake
#   lake_maintenance  1: one maintenance run at a time
set -eu
dagster instance concurrency set duckdb_writer 1
dagster instance concurrency set lake_writer "${BAM_ASSETS_LAKE_WRITERS:-4}"
dagster instance concurrency set lake_maintenance 1
