-- Shared by the wrk scripts (loaded with dofile from the script's own folder): Basic auth from
-- SLUICE_BENCH_AUTH (default admin:admin-password-123), and a thread id `tid` per wrk thread
-- (set by `setup`, read in `init` to seed each thread's random keys apart).
local common = {}

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

-- The Authorization header's value for SLUICE_BENCH_AUTH.
function common.basic_auth()
  return "Basic " .. b64(os.getenv("SLUICE_BENCH_AUTH") or "admin:admin-password-123")
end

local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

-- Without a seed every run repeats the same keys, so a second run against the same data
-- coalesces into the first run's incidents instead of creating new ones.
function common.seed()
  math.randomseed(os.time() * 1000 + (tid or 0))
end

return common
