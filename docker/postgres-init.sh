#!/bin/sh
# Runs once, when the postgres container initialises an empty data volume
# (/docker-entrypoint-initdb.d). POSTGRES_DB (STREAMCRAWL_PG_DATABASE) already exists;
# this adds the database holding Dagster's run, event-log and schedule storage.
set -eu

: "${STREAMCRAWL_PG_DAGSTER_DATABASE:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v dbname="$STREAMCRAWL_PG_DAGSTER_DATABASE" -v owner="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'dbname', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname')\gexec
SQL
