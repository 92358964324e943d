-- wrk script: POST /v1/score with bodies read from a file, one JSON body per line, cycled
-- (each wrk thread starts at a different line).
--
--   wrk -t2 -c64 -d15s -s training/bench/post_bodies.lua http://127.0.0.1:8080 -- BODIES
--
-- BODIES: single.jsonl (one listing per request) or batch-1000.jsonl ({"listings": [...]}),
--         written by training/bench/make_data.py.
-- WRK_DELAY_MS (environment, optional): each connection waits a random, exponentially
--         distributed pause with this mean (milliseconds; wrk truncates it to whole ms) after
--         a response before sending its next request. Latency is timed from the send, so the
--         pause is not counted in it. Random pauses keep the connections from falling into step
--         and arriving in bursts, which identical pauses do. wrk has no open-loop rate limit
--         (that is wrk2/oha), so this paces a closed loop: rate ~= connections / (pause + latency).
-- No response() callback: defining one makes wrk collect every answer's headers and body,
-- client CPU taken from the server on a 2-core machine. wrk's own summary prints
-- "Non-2xx or 3xx responses: N" whenever there are any.

local requests = {}
local count = 0
local index = 0
local counter = 0
thread_id = 0 -- global: setup() sets it in each thread's Lua state before init()

function setup(thread)
   counter = counter + 1
   thread:set("thread_id", counter)
end

function init(args)
   local path = args[1] or error("usage: ... -s post_bodies.lua URL -- BODIES")
   local headers = { ["Content-Type"] = "application/json" }
   for line in io.lines(path) do
      if #line > 0 then
         count = count + 1
         requests[count] = wrk.format("POST", "/v1/score", headers, line)
      end
   end
   if count == 0 then error("no bodies in " .. path) end
   index = (thread_id * 97) % count
   math.randomseed(thread_id * 7919 + os.time())
end

function request()
   index = index % count + 1
   return requests[index]
end

-- wrk decides whether to call delay() when it loads the script, before init(args), and a
-- defined delay() costs a timer per request even at 0 ms: so define it only when pacing.
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "")
if delay_ms then
   function delay()
      return -math.log(1 - math.random()) * delay_ms
   end
end

function done(summary, latency, requests_)
   io.write(string.format("requests %d in %.2f s: %.1f req/s; socket errors connect %d read %d write %d timeout %d; non-2xx %d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
      summary.errors.status))
   io.write(string.format("latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency:percentile(99.9) / 1000, latency.max / 1000))
end
