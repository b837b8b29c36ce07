-- wrk script: one sender request per call, each a new incident (a unique key per request).
-- SLUICE_BENCH_SENDER picks the sender: alertmanager (POST /api/sluice/v1/hooks/alertmanager,
-- one firing alert), webhook (generic JSON, /api/sluice/v1/hooks/webhook), pagerduty (POST
-- /v2/enqueue, a trigger with routing key SLUICE_BENCH_ROUTING_KEY), signed (the signed
-- webhook: lines "signature<TAB>body" read from SLUICE_BENCH_SIGNED, signed beforehand since
-- wrk's Lua has no HMAC). Basic auth (not for pagerduty and signed) from SLUICE_BENCH_AUTH
-- (default admin:admin-password-123). Used by bench/senders.sh.
local sender = os.getenv("SLUICE_BENCH_SENDER") or "alertmanager"
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local counter = 0

local signed = {}
local expected = 200
function init(args)
  common.seed()
  wrk.method = "POST"
  wrk.path = "/api/sluice/v1/hooks/" .. sender
  wrk.headers["Content-Type"] = "application/json"
  if sender == "pagerduty" then
    wrk.path = "/v2/enqueue"
    expected = 202
  elseif sender == "signed" then
    -- Each of wrk's two threads takes every other line, so no body is sent twice.
    local n = 0
    for line in io.lines(os.getenv("SLUICE_BENCH_SIGNED")) do
      n = n + 1
      if n % 2 == (tid or 1) % 2 then signed[#signed + 1] = line end
    end
  else
    wrk.headers["Authorization"] = common.basic_auth()
  end
end

local function key()
  counter = counter + 1
  return string.format("%d-%d-%d", tid or 0, counter, math.random(1, 1000000000))
end

function request()
  local body
  if sender == "signed" then
    counter = counter + 1
    local line = signed[counter]
    if not line then
      print("bench/senders.sh: out of signed bodies")
      line = signed[1]
    end
    local tab = line:find("\t", 1, true)
    return wrk.format(nil, nil, { ["X-Hub-Signature-256"] = "sha256=" .. line:sub(1, tab - 1),
      ["Content-Type"] = "application/json" }, line:sub(tab + 1))
  elseif sender == "pagerduty" then
    body = string.format(
      '{"routing_key":"%s","event_action":"trigger","dedup_key":"%s","payload":{"summary":' ..
      '"Disk usage above 95%% on db-%d","source":"db-%d","severity":"warning","component":"postgres"}}',
      os.getenv("SLUICE_BENCH_ROUTING_KEY") or "", key(), counter % 100, counter % 100)
  elseif sender == "alertmanager" then
    body = string.format(
      '{"version":"4","groupKey":"{}:{alertname=\\"DiskFull\\"}","truncatedAlerts":0,"status":"firing",' ..
      '"receiver":"sluice","groupLabels":{"alertname":"DiskFull"},"commonLabels":{},"commonAnnotations":{},' ..
      '"externalURL":"http://alertmanager.example:9093","alerts":[{"status":"firing",' ..
      '"labels":{"alertname":"DiskFull","instance":"db-%d:9100","severity":"warning"},' ..
      '"annotations":{"summary":"Disk usage above 95%% on db-%d"},"startsAt":"2026-12-07T10:00:00Z",' ..
      '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example:9090/graph",' ..
      '"fingerprint":"%s"}]}', counter % 100, counter % 100, key())
  else
    body = string.format('{"event":{"id":"%s","title":"Disk usage above 95%% on db-%d"},"level":"2"}',
      key(), counter % 100)
  end
  return wrk.format(nil, nil, nil, body)
end

-- Anything but a new incident counts as an error (printed for the first few per thread).
local errors = 0
function response(status, headers, body)
  local inserted = expected == 202 or body:find('"status":"inserted"', 1, true)
  if status ~= expected or not inserted then
    errors = errors + 1
    if errors < 3 then print(status, body) end
  end
end
