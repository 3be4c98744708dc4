#!/usr/bin/env bash
# Consentry loopback benchmarks, every figure from this one run on this
# machine. Builds the server and the load generator (bench/load), starts the
# server on 127.0.0.1 with a temporary database and CONSENTRY_ADMIN_KEY, runs
# the scenarios and writes docs/BENCHMARKS.md (intro from bench/intro.md).
#
#   bench/run.sh                 # about 3 minutes on a 2-core machine
#   EXPORT_EVENTS=200000 bench/run.sh   # smaller ledger for a quick try
#   COLDSTART=1000000 bench/run.sh --coldstart-only   # only the large-ledger cold start (needs root
#                                # to drop the page cache); its own section of docs/BENCHMARKS.md
#   COLDSTART=1000000 bench/run.sh                    # everything, then the cold start
#   bench/run.sh --console-only  # only the console pages with 1M events, 100k links (bench/load/console.go)
#
# To add a scenario, see the table in bench/load/main.go, then name it in
# one of the `load run -scenarios` lines below.
#
# Besides Go, it uses wrk (installed with apt-get when missing; without it
# the wrk figure is "not measured") and Chromium at /usr/bin/chromium for
# the widgets' browser figures (skipped with a note when missing).
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

# The large-ledger cold start (bench/load/coldstart.go) is optional: it
# seeds COLDSTART contacts (minutes), drops the page cache and restarts the
# server; it rewrites only its own section of docs/BENCHMARKS.md.
coldstart() {
	[ -n "${COLDSTART:-}" ] || return 0
	echo "== cold start: $COLDSTART contacts"
	"$LOAD" coldstart -consentry "$WORK/consentry" -db "$WORK/coldstart.db" -n "$COLDSTART" \
		-rounds "${COLDSTART_ROUNDS:-2}" -compact -md docs/BENCHMARKS.md
}
if [ "${1:-}" = "--coldstart-only" ]; then
	coldstart
	exit 0
fi
# The console pages (bench/load/console.go) are optional too: CONSOLE=1
# seeds 1,000,000 events and 100,000 links in-process (minutes) and
# rewrites only its own section; --console-only runs just that.
console_pages() {
	[ -n "${CONSOLE:-}" ] || return 0
	echo "== console pages: ${CONSOLE_EVENTS:-1000000} events, ${CONSOLE_LINKS:-100000} links"
	"$LOAD" console -events "${CONSOLE_EVENTS:-1000000}" -links "${CONSOLE_LINKS:-100000}" -doc docs/BENCHMARKS.md
}
if [ "${1:-}" = "--console-only" ]; then
	CONSOLE=${CONSOLE:-1} console_pages
	exit 0
fi
RESULTS="$WORK/results.json"
ADMIN_KEY="bench-$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
WA_SECRET="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"     # Meta app secret: the load tool signs deliveries with it
WA_VERIFY="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PORT=$("$LOAD" port)
BASE="http://127.0.0.1:$PORT"

start_server() { # db-file log-name
	CONSENTRY_ADMIN_KEY="$ADMIN_KEY" "$WORK/consentry" serve --db "$1" --addr "127.0.0.1:$PORT" \
		--wa-app-secret "$WA_SECRET" --wa-verify-token "$WA_VERIFY" >"$WORK/server-$2.log" 2>&1 &
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

# wrk drives the second durable opt-out measurement.
API_SCENARIOS=healthz,redirect,link_png,check,bulk_check,optouts,optouts_wrk,receipts,webhook
if ! command -v wrk >/dev/null 2>&1; then
	echo "== installing wrk"
	apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; } || true
fi
if ! command -v wrk >/dev/null 2>&1; then
	echo "!! wrk is not available: the wrk opt-out figure will be reported as not measured" >&2
	API_SCENARIOS=${API_SCENARIOS/,optouts_wrk/}
fi

echo "== API scenarios on a fresh database"
start_server "$WORK/api.db" api
run "$API_SCENARIOS" "" -wa-secret "$WA_SECRET" -wrk wrk -wrk-script bench/optouts.lua -timeout 8m
stop_server

# Go tests with the server stopped, so they do not compete with it.
echo "== QR matrix alone: go test -bench 'BenchmarkMatrix\$' ./qr/"
if ! go test -run '^$' -bench 'BenchmarkMatrix$' -benchtime 2s ./qr/ >"$WORK/matrix.log" 2>&1; then
	cat "$WORK/matrix.log" >&2
	exit 1
fi
"$LOAD" matrix -in "$WORK/matrix.log" -out "$RESULTS"

WIDGETS_FAILED=""
if [ -x /usr/bin/chromium ]; then
	echo "== widgets in Chromium: go test -run TestWidgetsInBrowser ./widgets/"
	if go test -count=1 -run TestWidgetsInBrowser -v ./widgets/ >"$WORK/widgets.log" 2>&1; then
		"$LOAD" widgets -in "$WORK/widgets.log" -out "$RESULTS"
	else
		tail -30 "$WORK/widgets.log" >&2
		WIDGETS_FAILED=1
		"$LOAD" widgets -skipped "the browser test TestWidgetsInBrowser failed in this run, so there are no widget figures." -out "$RESULTS"
	fi
else
	echo "!! /usr/bin/chromium is missing: widget figures skipped" >&2
	"$LOAD" widgets -skipped "/usr/bin/chromium is missing on this machine, so the browser figures were not measured." -out "$RESULTS"
fi

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
# The report rewrites the file: keep the cold-start section of an earlier run.
COLD_SECTION=""
CONSOLE_SECTION=""
POSTGRES_SECTION=""  # bench/postgres.sh writes it
if [ -f docs/BENCHMARKS.md ]; then
	COLD_SECTION=$(sed -n '/^<!-- coldstart:begin/,/^<!-- coldstart:end -->/p' docs/BENCHMARKS.md)
	CONSOLE_SECTION=$(sed -n '/^<!-- console:begin/,/^<!-- console:end -->/p' docs/BENCHMARKS.md)
	POSTGRES_SECTION=$(sed -n '/^<!-- postgres:begin/,/^<!-- postgres:end -->/p' docs/BENCHMARKS.md)
fi
"$LOAD" report -in "$RESULTS" -intro bench/intro.md -out docs/BENCHMARKS.md \
	-meta "Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	-meta "Commit=$COMMIT" \
	-meta "Machine=$(nproc) cores ($CPU), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr)" \
	-meta "Go=$(go env GOVERSION)" \
	-meta "Load=$CONCURRENCY clients for the throughput scenarios (64 for opt-outs and receipts, as named), $DURATION measured after 1s warm-up (wrk: $DURATION, no warm-up); client and server on the same cores" \
	-meta "Whole run=${ELAPSED}s"
if [ -n "$COLD_SECTION" ]; then printf '\n%s\n' "$COLD_SECTION" >>docs/BENCHMARKS.md; fi
if [ -n "$CONSOLE_SECTION" ]; then printf '\n%s\n' "$CONSOLE_SECTION" >>docs/BENCHMARKS.md; fi
if [ -n "$POSTGRES_SECTION" ]; then printf '\n%s\n' "$POSTGRES_SECTION" >>docs/BENCHMARKS.md; fi
coldstart
console_pages
echo "== wrote docs/BENCHMARKS.md in ${ELAPSED}s"
if [ -n "$WIDGETS_FAILED" ]; then
	echo "!! the widgets browser test failed; its figures are missing from the report" >&2
	exit 1
fi
