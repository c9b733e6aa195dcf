-- wrk script: POST /v1/turns, one ~100-byte turn per request, spread over 1,000 users
-- and 10 sessions each. Usage (README "Benchmarks", BENCHMARKS.md "Load"):
--   MNEMO_KEY=<key> wrk -t2 -c64 -d15s --latency -s benches/wrk/store.lua http://127.0.0.1:18080
local key = os.getenv("MNEMO_KEY") or error("set MNEMO_KEY to an API key of the server")
local subjects = { "my dog Biscuit", "the garden", "my sister Ana", "work at the bakery",
                   "the pottery class", "our trip to Lisbon", "my new bike", "the book club" }
local verbs = { "was great today", "worried me a bit", "made me laugh", "took all afternoon",
                "reminded me of home", "is getting better", "surprised everyone", "needs more time" }
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
  local user = n % 1000
  local body = string.format(
    '{"user_id":"user-%d","session_id":"s%d","role":"user","content":"Today %s %s, and I wanted to tell you about it (%d)."}',
    user, math.floor(n / 1000) % 10, subjects[n % #subjects + 1], verbs[math.floor(n / 7) % #verbs + 1], n)
  return wrk.format("POST", "/v1/turns",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }, body)
end
