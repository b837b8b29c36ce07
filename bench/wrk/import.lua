-- wrk script: single-row Import Set API creates, each with a unique correlation id.
-- Usage: wrk -t2 -c64 -d20s -s bench/wrk/import.lua http://127.0.0.1:8080
-- Credentials: SLUICE_BENCH_AUTH=user:password (default admin:admin-password-123).
local auth = os.getenv("SLUICE_BENCH_AUTH") or "admin:admin-password-123"
local function b64(data)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local counter = 0
local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  -- Without a seed every run repeats the same correlation ids, so a second run against the same
  -- data coalesces into the first run's incidents instead of creating new ones.
  math.randomseed(os.time() * 1000 + (tid or 0))
  wrk.method = "POST"
  wrk.path = "/api/now/import/u_incident_import"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Basic " .. b64(auth)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"u_short_description":"Disk usage above 95%% on db-%d","u_description":"Filesystem /var/lib/pgsql at 96%%",' ..
    '"u_caller":"monitoring.bot","u_category":"database","u_impact":"2","u_urgency":"1",' ..
    '"u_correlation_id":"bench:%d:%d:%d","u_contact_type":"monitoring"}',
    counter % 100, tid or 0, counter, math.random(1, 1000000000))
  return wrk.format(nil, nil, nil, body)
end

-- Anything but a new incident counts as an error (printed for the first few per thread).
local errors = 0
function response(status, headers, body)
  if status ~= 201 or not body:find('"status":"inserted"', 1, true) then
    errors = errors + 1
    if errors < 3 then print(status, body) end
  end
end
