#!/usr/bin/env bash
# Integrations benchmarks on loopback, apart from bench/run.sh so they can
# be run alone: a streamed import of IMPORT_ROWS rows (default 1,000,000)
# with the server's memory sampled, and the latency from an opt-out's 201
# to its outbound webhook at a receiver on 127.0.0.1. Prints the figures
# and leaves the raw results in $OUT (default $TMPDIR/consentry-bench-integrations.json).
#
#   bench/integrations.sh
#   IMPORT_ROWS=100000 bench/integrations.sh     # a quick try
#   SCENARIOS=import bench/integrations.sh       # the import alone
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-${TMPDIR:-/tmp}/consentry-bench-integrations.json}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/consentry-bench-int.XXXXXX")
SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/consentry" ./cmd/consentry
go build -o "$WORK/load" ./bench/load
LOAD="$WORK/load"
ADMIN_KEY="bench-$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
PORT=$("$LOAD" port)
BASE="http://127.0.0.1:$PORT"

# The receiver is on loopback, which subscriptions may reach only when
# the operator allows private receivers.
CONSENTRY_ADMIN_KEY="$ADMIN_KEY" CONSENTRY_WEBHOOK_ALLOW_PRIVATE=1 "$WORK/consentry" serve \
	--db "$WORK/int.db" --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
"$LOAD" wait -url "$BASE" -timeout 30s || { tail -20 "$WORK/server.log" >&2; exit 1; }

rm -f "$OUT"
"$LOAD" run -url "$BASE" -key "$ADMIN_KEY" -pid "$SERVER_PID" -scenarios "${SCENARIOS:-webhook_latency,import}" \
	-workdir "$WORK" -out "$OUT" -timeout 15m
echo "== go version $(go version | cut -d' ' -f3), $(nproc) cores; results in $OUT"
