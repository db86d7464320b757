-- wrk script: POST JSON bodies cycled from a file, stop after a fixed number of responses, and print
-- one line "BENCH_RESULT {...}" with throughput, latency percentiles and a count of every status code.
--
--   wrk -t1 -c32 -d600s --timeout 60s -s bench/wrk_post.lua http://127.0.0.1:3000/sentiment -- BODIES N
--
-- BODIES: one JSON body per line. N: responses after which the (single) thread stops and prints
-- BENCH_DONE; 0 runs for the whole -d duration. Requests still in flight then are not counted.

local requests = {}
local index = 0
local limit = 0
local responses = 0
statuses = {}

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   limit = tonumber(args[2]) or 0
   local headers = { ["Content-Type"] = "application/json" }
   for line in io.lines(path) do
      if #line > 0 then
         table.insert(requests, wrk.format("POST", nil, headers, line))
      end
   end
   if #requests == 0 then
      error("no request bodies in " .. path)
   end
end

function request()
   index = index % #requests + 1
   return requests[index]
end

function response(status, headers, body)
   responses = responses + 1
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
   if limit > 0 and responses == limit then
      -- wrk waits out its -d duration even after its threads stop; the caller sends SIGINT on this line.
      io.write("BENCH_DONE\n")
      io.flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      local st = thread:get("statuses")
      if st then
         for code, n in pairs(st) do
            counts[code] = (counts[code] or 0) + n
         end
      end
   end
   local parts = {}
   for code, n in pairs(counts) do
      table.insert(parts, string.format('"%s": %d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"duration_us": %d, "responses": %d, "bytes": %d, ' ..
      '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d}, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "statuses": {%s}}\n',
      summary.duration, summary.requests, summary.bytes,
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
      e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
