-- wrk script: POST /v1/context over 1,000 users, one of six queries each (answers repeat,
-- so the per-user answer cache serves most), or every query distinct with DISTINCT=1.
--   MNEMO_KEY=<key> wrk -t2 -c64 -d15s --latency -s benches/wrk/context.lua http://127.0.0.1:18080
local key = os.getenv("MNEMO_KEY") or error("set MNEMO_KEY to an API key of the server")
local distinct = os.getenv("DISTINCT") == "1"
local queries = { "How is my dog?", "What about the garden?", "How is Ana doing?",
                  "How was work?", "Tell me about pottery", "What happened in Lisbon?" }
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  requests = 0
end

request = function()
  requests = requests + 1
  local n = id * 1000003 + requests
  local query = queries[n % #queries + 1]
  if distinct then
    query = query .. " " .. n
  end
  local body = string.format('{"user_id":"user-%d","query":"%s"}', n % 1000, query)
  return wrk.format("POST", "/v1/context",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }, body)
end

done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status))
end
