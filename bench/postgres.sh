#!/usr/bin/env bash
# PostgreSQL beside bbolt, in one run on this machine: check throughput (1
# and 64 clients), bulk check of 10,000 numbers, and durable opt-outs (1 and
# 64 clients) on
#   - a bbolt file (one process, the default deployment),
#   - one `consentry serve` on PostgreSQL,
#   - two `consentry serve` processes on the same PostgreSQL database, the
#     load sent to each in turn (bench/load run -url A,B).
# Writes the "postgres" section of docs/BENCHMARKS.md (bench/load pgreport);
# bench/run.sh keeps that section when it rewrites the rest.
#
#   bench/postgres.sh                       # a private cluster of its own (.ci/postgres start), about 4 minutes
#   BENCH_PG=postgres://…/postgres bench/postgres.sh   # use an existing cluster (databases bench_pg_* created and dropped)
#   DURATION=8s bench/postgres.sh           # longer windows
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-4s}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/consentry-pgbench.XXXXXX")
SERVER_PIDS=()
PG_DIR=""
DATABASES=()

stop_servers() {
	for pid in "${SERVER_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	SERVER_PIDS=()
}
cleanup() {
	stop_servers
	if [ -n "${ADMIN_URL:-}" ] && [ -z "$PG_DIR" ]; then
		for db in "${DATABASES[@]}"; do psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
	fi
	if [ -n "$PG_DIR" ]; then bash .ci/postgres stop "$PG_DIR"; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

START=$(date +%s)
echo "== building into $WORK"
go build -o "$WORK/consentry" ./cmd/consentry
go build -o "$WORK/load" ./bench/load
LOAD="$WORK/load"

if [ -n "${BENCH_PG:-}" ]; then
	ADMIN_URL=$BENCH_PG
else
	echo "== starting a private PostgreSQL cluster"
	eval "$(CONSENTRY_PG_PORT=$("$LOAD" port) bash .ci/postgres start)"
	PG_DIR=$CONSENTRY_PG_DIR
	ADMIN_URL=$CONSENTRY_TEST_PG
fi
db_url() { # database name -> URL on the same cluster
	echo "$ADMIN_URL" | sed -E "s#(://[^/]+)/[^?]*#\1/$1#"
}
new_database() {
	local name="bench_pg_$1_$$"
	psql -q "$ADMIN_URL" -c "CREATE DATABASE $name" >/dev/null
	DATABASES+=("$name")
	db_url "$name"
}
PG_VERSION=$(psql -tA "$ADMIN_URL" -c "SHOW server_version")
PG_SETTINGS=$(psql -tA "$ADMIN_URL" -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync','synchronous_commit','shared_buffers','wal_sync_method','max_connections')")

RESULTS="$WORK/results.json"
ADMIN_KEY="bench-$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"

start_server() { # db port name
	CONSENTRY_ADMIN_KEY="$ADMIN_KEY" "$WORK/consentry" serve --db "$1" --addr "127.0.0.1:$2" >"$WORK/server-$3.log" 2>&1 &
	SERVER_PIDS+=($!)
	if ! "$LOAD" wait -url "http://127.0.0.1:$2" -timeout 60s; then
		tail -20 "$WORK/server-$3.log" >&2
		exit 1
	fi
}

LOADS=()
run_setup() { # label urls
	local label=$1 urls=$2
	LOADS+=("$label: $(cut -d' ' -f1-3 /proc/loadavg) before")
	for c in 1 64; do
		"$LOAD" run -url "$urls" -key "$ADMIN_KEY" -pid "${SERVER_PIDS[0]}" -scenarios check -label "$label c$c" \
			-concurrency "$c" -duration "$DURATION" -warmup 1s -workdir "$WORK" -out "$RESULTS"
	done
	"$LOAD" run -url "$urls" -key "$ADMIN_KEY" -pid "${SERVER_PIDS[0]}" -scenarios bulk_check,optouts -label "$label" \
		-concurrency 64 -duration "$DURATION" -warmup 1s -workdir "$WORK" -out "$RESULTS" -timeout 8m
	LOADS[-1]="${LOADS[-1]}, $(cut -d' ' -f1-3 /proc/loadavg) after"
}

P1=$("$LOAD" port)
P2=$("$LOAD" port)
while [ "$P2" = "$P1" ]; do P2=$("$LOAD" port); done

echo "== bbolt, one process"
start_server "$WORK/bench.db" "$P1" bbolt
run_setup bbolt "http://127.0.0.1:$P1"
stop_servers

echo "== PostgreSQL, one process"
DB1=$(new_database one)
start_server "$DB1" "$P1" pg1
run_setup postgres-1 "http://127.0.0.1:$P1"
stop_servers

echo "== PostgreSQL, two processes"
DB2=$(new_database two)
start_server "$DB2" "$P1" pg2a
start_server "$DB2" "$P2" pg2b
run_setup postgres-2 "http://127.0.0.1:$P1,http://127.0.0.1:$P2"
stop_servers

ELAPSED=$(($(date +%s) - START))
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then COMMIT="$COMMIT (with uncommitted changes)"; fi
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
CLUSTER="a private cluster started by this run (.ci/postgres start)"
[ -z "$PG_DIR" ] && CLUSTER="an existing cluster (BENCH_PG), shared with whatever else uses it"
LOAD_META=$(IFS=';'; echo "${LOADS[*]}" | sed 's/;/; /g')
"$LOAD" pgreport -in "$RESULTS" -md docs/BENCHMARKS.md \
	-meta "Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	-meta "Commit=$COMMIT" \
	-meta "Machine=$(nproc) cores ($CPU), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr); the load generator, the server process(es) and PostgreSQL share these cores" \
	-meta "PostgreSQL=$PG_VERSION on loopback, $CLUSTER; $PG_SETTINGS" \
	-meta "Load average (1, 5, 15 min) around each setup=$LOAD_META" \
	-meta "Windows=$DURATION measured after 1s warm-up; opt-outs alternate 1 and 64 clients 3 times (ratio: median of the rounds)" \
	-meta "Whole run=${ELAPSED}s"
echo "== wrote the postgres section of docs/BENCHMARKS.md in ${ELAPSED}s"
