#!/usr/bin/env bash
# PostgreSQL beside bbolt, in one run on this machine: check throughput (1
# and 64 clients), bulk check of 10,000 numbers, and durable opt-outs (1 and
# 64 clients) on
#   - a bbolt file (one process, the default deployment),
#   - one `consentry serve` on PostgreSQL,
#   - two `consentry serve` processes on the same PostgreSQL database, the
#     load sent to each in turn (bench/load run -url A,B).
# The three run side by side; the checks at 64 clients alternate between
# them in rounds (CHECK_ROUNDS, 3), the rest is measured setup by setup.
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

# All three setups run side by side (the ones not measured stay idle), so
# the checks at 64 clients can alternate between them: in each round the
# three windows are back to back, and the target's ratio is the median of
# the rounds' ratios, so a neighbour's burst on the shared machine moves
# one round, not one setup's whole figure.
CHECK_ROUNDS=${CHECK_ROUNDS:-3}
ports() { # n distinct free ports
	local out=() p
	while [ ${#out[@]} -lt "$1" ]; do
		p=$("$LOAD" port)
		[[ " ${out[*]} " == *" $p "* ]] || out+=("$p")
	done
	echo "${out[@]}"
}
read -r P1 P2 P3 P4 <<<"$(ports 4)"
declare -A URLS PIDS
echo "== starting bbolt, PostgreSQL with one process, PostgreSQL with two processes"
start_server "$WORK/bench.db" "$P1" bbolt
URLS[bbolt]="http://127.0.0.1:$P1" PIDS[bbolt]=${SERVER_PIDS[-1]}
DB1=$(new_database one)
start_server "$DB1" "$P2" pg1
URLS[postgres-1]="http://127.0.0.1:$P2" PIDS[postgres-1]=${SERVER_PIDS[-1]}
DB2=$(new_database two)
start_server "$DB2" "$P3" pg2a
PIDS[postgres-2]=${SERVER_PIDS[-1]}
start_server "$DB2" "$P4" pg2b
URLS[postgres-2]="http://127.0.0.1:$P3,http://127.0.0.1:$P4"
SETUPS=(bbolt postgres-1 postgres-2)

LOADS=()
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
run_load() { # setup label scenarios concurrency [flags]
	local setup=$1 label=$2 scenarios=$3 c=$4
	shift 4
	"$LOAD" run -url "${URLS[$setup]}" -key "$ADMIN_KEY" -pid "${PIDS[$setup]}" -scenarios "$scenarios" -label "$label" \
		-concurrency "$c" -duration "$DURATION" -warmup 1s -workdir "$WORK" -out "$RESULTS" "$@"
}

echo "== checks, 1 client"
LOADS+=("checks at 1 client: $(loadavg) before")
for setup in "${SETUPS[@]}"; do run_load "$setup" "$setup c1" check 1; done
for round in $(seq 1 "$CHECK_ROUNDS"); do
	echo "== checks, 64 clients, round $round"
	LOADS+=("checks at 64 clients, round $round: $(loadavg) before")
	for setup in "${SETUPS[@]}"; do run_load "$setup" "$setup c64 r$round" check 64; done
done
for setup in "${SETUPS[@]}"; do
	echo "== bulk checks and opt-outs: $setup"
	LOADS+=("bulk checks and opt-outs on $setup: $(loadavg) before")
	run_load "$setup" "$setup" bulk_check,optouts 64 -timeout 8m
done
LOADS+=("end: $(loadavg)")
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
	-meta "Load average (1, 5, 15 min) through the run=$LOAD_META" \
	-meta "Windows=$DURATION measured after 1s warm-up; checks at 64 clients in $CHECK_ROUNDS rounds, each round one window per setup back to back (figures: medians of the rounds; the target's ratio: median of the rounds' ratios); opt-outs alternate 1 and 64 clients 3 times (ratio: median of the rounds)" \
	-meta "Whole run=${ELAPSED}s"
echo "== wrote the postgres section of docs/BENCHMARKS.md in ${ELAPSED}s"
