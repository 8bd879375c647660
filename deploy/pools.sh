#!/bin/sh
# Sets the limit of every pool bam-assets uses, explicitly, in the instance at $DAGSTER_HOME
# (deploy/dagster.yaml). Run once per deployment, before the first run, and again to change them:
#   DAGSTER_HOME=/opt/dagster/home sh deploy/pools.sh
#   lake_writer       $BAM_ASSETS_LAKE_WRITERS (4): concurrent writers (ingests, summaries, purges).
#                     The store takes any number (each holds its catalog only for its swap); the
#                     limit is what the machines take: each writer uses about one CPU and up to
#                     ~400 MB, and Postgres a connection or two per writer.
#   lake_maintenance  1: one maintenance run at a time
set -eu
dagster instance concurrency set lake_writer "${BAM_ASSETS_LAKE_WRITERS:-4}"
dagster instance concurrency set lake_maintenance 1
