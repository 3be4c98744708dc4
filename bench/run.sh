#!/usr/bin/env bash
# Consentry loopback benchmarks, every figure from this one run on this
# machine. Builds the server and the load generator (bench/load), starts the
# server on 127.0.0.1 with a temporary database and CONSENTRY_ADMIN_KEY, runs
# the scenarios and writes docs/BENCHMARKS.md (intro from bench/intro.md).
#
#   bench/run.sh                 # about 3-5 minutes on a 2-core machine
#   EXPORT_EVENTS=200000 bench/run.sh   # smaller ledger for a quick try
#
# To add a scenario, see the table in bench/load/main.go, then name it in
# one of the `load run -scenarios` lines below.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
EXPORT_EVENTS=${EXPORT_EVENTS:-1000000}      # the big export
EXPORT_SMALL=$((EXPORT_EVENTS / 4))           # the same ledger at a quarter of its size
CONCURRENCY=${CONCURRENCY:-32}
DURATION=${DURATION:-4s}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/consentry-bench.XXXXXX")
SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

START=$(date +%s)
echo "== building into $WORK"
go build -o "$WORK/consentry" ./cmd/consentry
go build -o "$WORK/load" ./bench/load
LOAD="$WORK/load"
RESULTS="$WORK/results.json"
ADMIN_KEY="bench-$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
PORT=$("$LOAD" port)
BASE="http://127.0.0.1:$PORT"

start_server() { # db-file log-name
	CONSENTRY_ADMIN_KEY="$ADMIN_KEY" "$WORK/consentry" serve --db "$1" --addr "127.0.0.1:$PORT" \
		>"$WORK/server-$2.log" 2>&1 &
	SERVER_PID=$!
	if ! "$LOAD" wait -url "$BASE" -timeout 30s; then
		tail -20 "$WORK/server-$2.log" >&2
		exit 1
	fi
}

size_label() { # 250000 -> 250k, 1000000 -> 1M
	if [ $(($1 % 1000000)) -eq 0 ]; then echo "$(($1 / 1000000))M"
	elif [ $(($1 % 1000)) -eq 0 ]; then echo "$(($1 / 1000))k"
	else echo "$1"; fi
}

stop_server() {
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID"
	SERVER_PID=""
}

run() { # scenarios label [extra flags]
	local scenarios=$1 label=$2
	shift 2
	"$LOAD" run -url "$BASE" -key "$ADMIN_KEY" -pid "$SERVER_PID" -scenarios "$scenarios" -label "$label" \
		-concurrency "$CONCURRENCY" -duration "$DURATION" -warmup 1s -workdir "$WORK" -out "$RESULTS" "$@"
}

echo "== API scenarios on a fresh database"
start_server "$WORK/api.db" api
run healthz,check,bulk_check,optouts ""
stop_server

echo "== export: seeding $EXPORT_SMALL events before the server starts"
"$LOAD" seed -db "$WORK/ledger.db" -n "$EXPORT_SMALL" -label "to $EXPORT_SMALL" -out "$RESULTS"
start_server "$WORK/ledger.db" small
run export "$(size_label "$EXPORT_SMALL")"
stop_server

echo "== export: growing the same ledger to $EXPORT_EVENTS events"
"$LOAD" seed -db "$WORK/ledger.db" -n $((EXPORT_EVENTS - EXPORT_SMALL)) -label "to $EXPORT_EVENTS" -out "$RESULTS"
start_server "$WORK/ledger.db" big
run export,verify "$(size_label "$EXPORT_EVENTS")" -consentry "$WORK/consentry"
stop_server

ELAPSED=$(($(date +%s) - START))
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then COMMIT="$COMMIT (with uncommitted changes)"; fi
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mkdir -p docs
"$LOAD" report -in "$RESULTS" -intro bench/intro.md -out docs/BENCHMARKS.md \
	-meta "Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	-meta "Commit=$COMMIT" \
	-meta "Machine=$(nproc) cores ($CPU), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr)" \
	-meta "Go=$(go env GOVERSION)" \
	-meta "Load=$CONCURRENCY clients for the throughput scenarios, $DURATION measured after 1s warm-up; client and server on the same cores" \
	-meta "Whole run=${ELAPSED}s"
echo "== wrote docs/BENCHMARKS.md in ${ELAPSED}s"
