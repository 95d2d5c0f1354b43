#!/bin/sh
# Runs in temporalio/admin-tools: creates and migrates Temporal's two PostgreSQL databases (as Temporal's own
# compose samples do with temporal-sql-tool), then, once the server is up, the namespace and kooflow's search
# attributes. Idempotent: safe to run on every `docker compose up`.
set -eu
: "${POSTGRES_SEEDS:=postgresql}" "${DB_PORT:=5432}" "${POSTGRES_USER:=temporal}" "${POSTGRES_PWD:=temporal}"
SCHEMA=/etc/temporal/schema/postgresql/v12
sqltool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" --pw "$POSTGRES_PWD" "$@"; }

if [ "${1:-schema}" = schema ]; then
  for db in temporal temporal_visibility; do
    sqltool --db "$db" create || true
    sqltool --db "$db" setup-schema -v 0.0 || true
  done
  sqltool --db temporal update-schema -d "$SCHEMA/temporal/versioned"
  sqltool --db temporal_visibility update-schema -d "$SCHEMA/visibility/versioned"
  exit 0
fi

# namespace and search attributes (kept in step with instance.SearchAttributes in the Go code)
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do sleep 1; done
temporal operator namespace describe -n "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 ||
  temporal operator namespace create -n "$TEMPORAL_NAMESPACE" --retention 720h --address "$TEMPORAL_ADDRESS"
for sa in OrderId=Keyword InstanceId=Keyword ProductId=Keyword LifecycleState=Keyword SupervisionState=Keyword \
          ExpireTime=Datetime Parked=Bool TestFlag=Bool SettlementPeriod=Keyword; do
  temporal operator search-attribute create -n "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" \
    --name "${sa%%=*}" --type "${sa#*=}" 2>/dev/null || true
done
