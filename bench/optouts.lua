-- wrk script for bench/run.sh (scenario optouts_wrk in bench/load): durable
-- opt-outs, each of a number never used before, with the same body as the
-- Go client's optouts scenario.
--
--   CONSENTRY_BENCH_KEY=KEY wrk -t1 -c64 -d4s -s bench/optouts.lua http://127.0.0.1:PORT/v1/optouts -- START
--
-- Numbers are +551198 followed by START + a counter in 7 digits. The counter
-- lives in one thread's Lua state, so run with -t1 to keep numbers unique,
-- and give each run its own START. done() prints one WRK-RESULT line.

local start, counter = 0, 0

function init(args)
  start = tonumber(args[1]) or 0
  local key = os.getenv("CONSENTRY_BENCH_KEY")
  if key == nil or key == "" then
    error("CONSENTRY_BENCH_KEY is not set")
  end
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format('{"phone":"+551198%07d","source":"api","reason":"load test"}', start + counter)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK-RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d status=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
    math.floor(latency.max), e.status, e.connect, e.read, e.write, e.timeout))
end
