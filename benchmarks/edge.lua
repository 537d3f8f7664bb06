-- wrk script for bench_edge.py: sends each pre-signed request of a file once.
-- The file (first script argument) holds requests as "<length>\n<bytes>".
-- With "cycle" as second argument, the requests are sent round and round
-- (for the baseline, which stores nothing); else each is sent once at most.
-- Counts answers by kind and prints one JSON line when wrk is done.

local threads = {}
local requests = {}
local index = 0
local cycle = false
ok = 0
accepted = 0
duplicate = 0
exhausted = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  while true do
    local size = file:read("*l")
    if not size then break end
    requests[#requests + 1] = file:read(tonumber(size))
  end
  file:close()
  cycle = args[2] == "cycle"
end

function request()
  index = index + 1
  if index > #requests then
    -- Out of unique requests: unless cycling, stop (the answer to this
    -- resent one, "duplicate", shows that the run was cut short).
    exhausted = cycle and 0 or 1
    index = 1
  end
  return requests[index]
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if string.find(body, '"accepted"', 1, true) then
      accepted = accepted + 1
    elseif string.find(body, '"duplicate"', 1, true) then
      duplicate = duplicate + 1
    end
  end
  if exhausted == 1 then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local counts = {ok = 0, accepted = 0, duplicate = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(counts) do
      counts[name] = counts[name] + thread:get(name)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "ok": %d, "accepted": %d, ' ..
    '"duplicate": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"socket_errors": %d, "status_errors": %d}\n',
    summary.requests, summary.duration, counts.ok, counts.accepted,
    counts.duplicate, latency:percentile(50), latency:percentile(99), latency.max,
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
