#!/bin/sh
# Runs once when the compose PostgreSQL volume is created: kooflow's own role and database, separate from
# Temporal's databases (temporal, temporal_visibility), which temporal-sql-tool creates.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE kooflow LOGIN PASSWORD '${KOOFLOW_DB_PASSWORD}';
CREATE DATABASE kooflow OWNER kooflow;
SQL
