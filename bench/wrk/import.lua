-- wrk script: single-row Import Set API creates, each with a unique correlation id.
-- Usage: wrk -t2 -c64 -d20s -s bench/wrk/import.lua http://127.0.0.1:8080
-- Credentials: SLUICE_BENCH_AUTH=user:password (default admin:admin-password-123).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local counter = 0

function init(args)
  common.seed()
  wrk.method = "POST"
  wrk.path = "/api/now/import/u_incident_import"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = common.basic_auth()
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
