-- wrk script for every benchmark scenario (run.sh):
--   wrk -t2 -c64 -d15s --latency -s scenario.lua http://127.0.0.1:18181 -- <scenario> <data file> <threads> [probe]
-- scenario: s1 GET /organizations/{id}          as a member, over every membership
--           s2 GET /organizations/{id}/members?limit=20, likewise
--           s3 GET /organizations                 over every user with an organization
--           s4 POST then DELETE /organizations/{org}/members[/{user}] as the owner, over
--              (org, user) pairs where user is not a member. wrk's request() cannot tell which
--              connection it fills, so instead of alternating per connection each thread sends
--              a pair's DELETE as soon as its POST has answered 201 (read from Location), and a
--              new POST otherwise: a DELETE never overtakes its POST, and the threads' pair
--              sets are disjoint.
--           s5 POST /authz/check, one check (organization:read) per request, over memberships
--           s5b POST /authz/check, a batch of 20 checks: 20 organizations of one user
--           s6 POST /authz/check as a service, one check (report:read, which the members' custom
--              role `analyst` grants as report:*) per request, over memberships
--           s6b the same, a batch of 20: 20 organizations of one user
--           s7 POST /authz/explain, the caller's own model:read, over memberships
--           s8 POST /authz/check, one check of model:update on a model, over memberships: the
--              grant reaches the user through groups g3 < g2 < g1, on the model's grandparent
--           s9 GET /organizations/{id}/resources?...&limit=100, one user reaching 10,000 models
--           s10 POST then DELETE /organizations/{org}/groups/s10/members[/{user}] as the owner,
--              over (org, member) pairs, as s4 does for memberships
--           s11 POST /auth/token (RFC 8693 exchange, a form, organization_id given) of the
--              member's identity token, over memberships
--           s12 s1's requests with the member's access token for the organization (the "A"
--              lines access_tokens.py adds) instead of the identity token
-- "probe" (used for the warm-up) also records the first failed response, printed by done().
-- done() prints one machine-readable line for run.sh:
--   BENCH requests=.. duration_us=.. rps=.. p50_us=.. p99_us=.. non2xx=.. connect=.. read=.. write=.. timeout=..
-- (plus "BENCH_S4 ..." and "BENCH_FAILURE ..." lines when they apply).

local threads = {}
local next_id = 1

-- Runs in the main Lua state, once per thread, before that thread's init(): ids 1..threads
-- partition the data.
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function split(s, sep)
  local out = {}
  for field in string.gmatch(s, "[^" .. sep .. "]+") do out[#out + 1] = field end
  return out
end

-- The data file gen_data.py wrote: see its docstring.
local function load(path)
  local d = { users = {}, tokens = {}, orgs = {}, owner = {}, members = {}, listers = {},
              batches = {}, writes = {}, resource_checks = {}, group_writes = {}, s9 = nil,
              service = nil, access = {} }
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    local f = split(line, " ")
    local kind = f[1]
    if kind == "U" then
      local i = tonumber(f[2]); d.users[i] = f[3]; d.tokens[i] = f[4]
    elseif kind == "O" then
      local i = tonumber(f[2]); d.orgs[i] = f[3]; d.owner[i] = tonumber(f[4])
    elseif kind == "M" then
      d.members[#d.members + 1] = { tonumber(f[2]), tonumber(f[3]) }
    elseif kind == "L" then
      d.listers[#d.listers + 1] = tonumber(f[2])
    elseif kind == "B" then
      local orgs = {}
      for _, o in ipairs(split(f[3], ",")) do orgs[#orgs + 1] = tonumber(o) end
      d.batches[#d.batches + 1] = { tonumber(f[2]), orgs }
    elseif kind == "W" then
      d.writes[#d.writes + 1] = { tonumber(f[2]), tonumber(f[3]) }
    elseif kind == "C" then
      d.resource_checks[#d.resource_checks + 1] = { tonumber(f[2]), tonumber(f[3]), f[4] }
    elseif kind == "G" then
      d.group_writes[#d.group_writes + 1] = { tonumber(f[2]), tonumber(f[3]) }
    elseif kind == "S" then
      d.s9 = { tonumber(f[2]), tonumber(f[3]) }
    elseif kind == "V" then
      d.service = f[2]
    elseif kind == "A" then
      d.access[#d.access + 1] = { tonumber(f[2]), tonumber(f[3]), f[4] }
    end
  end
  file:close()
  return d
end

local host
-- token nil: no Authorization header; content_type: the body's (default JSON).
local function http(method, path, token, body, content_type)
  local lines = {
    method .. " " .. path .. " HTTP/1.1",
    "Host: " .. host,
  }
  if token then lines[#lines + 1] = "Authorization: Bearer " .. token end
  if body then
    lines[#lines + 1] = "Content-Type: " .. (content_type or "application/json")
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body or ""
  return table.concat(lines, "\r\n")
end

local function check_body(d, orgs, permission, user)
  local checks = {}
  local about = user and string.format(',"user_id":"%s"', d.users[user]) or ""
  for i, o in ipairs(orgs) do
    checks[i] = string.format('{"organization_id":"%s","permission":"%s"%s}', d.orgs[o],
                              permission or "organization:read", about)
  end
  return '{"checks":[' .. table.concat(checks, ",") .. "]}"
end

-- s11: the exchange's form (the token is base64url and dots: nothing to escape).
local function exchange_body(d, user, org)
  return "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange" ..
         "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt" ..
         "&subject_token=" .. d.tokens[user] .. "&organization_id=" .. d.orgs[org]
end

-- Per-thread state.
local scenario, probe
local requests, nrequests, cursor = {}, 0, 1
-- s4, s10: this thread's pairs, the ones added and waiting for their DELETE (FIFO), and counters.
local d, pairs_, pair_of_location, added = nil, {}, {}, {}
local queue, qhead, qtail = {}, 1, 0
local wcursor = 1
failure_status, failure_body = 0, ""
created, removed, other = 0, 0, 0

local function resource_check_body(d, org, model)
  return string.format(
    '{"checks":[{"organization_id":"%s","permission":"model:update","resource_type":"model","resource_id":"%s"}]}',
    d.orgs[org], model)
end

-- s4 and s10: the member (of the organization, or of its group s10) a pair adds and removes.
local function members_path(d, p)
  if scenario == "s10" then return "/organizations/" .. d.orgs[p[1]] .. "/groups/s10/members" end
  return "/organizations/" .. d.orgs[p[1]] .. "/members"
end

function init(args)
  scenario = args[1]
  local path = args[2]
  local nthreads = tonumber(args[3])
  probe = args[4] == "probe"
  if not scenario or not path or not nthreads then
    error("usage: -- <s1|s2|s3|s4|s5|s5b|s6|s6b|s7|s8|s9|s10|s11|s12> <data file> <threads> [probe]")
  end
  host = wrk.headers["Host"]
  d = load(path)
  local id = wrk.thread:get("id")

  local function add(r) nrequests = nrequests + 1; requests[nrequests] = r end
  if scenario == "s1" then
    for _, m in ipairs(d.members) do
      add(http("GET", "/organizations/" .. d.orgs[m[2]], d.tokens[m[1]]))
    end
  elseif scenario == "s2" then
    for _, m in ipairs(d.members) do
      add(http("GET", "/organizations/" .. d.orgs[m[2]] .. "/members?limit=20", d.tokens[m[1]]))
    end
  elseif scenario == "s3" then
    for _, u in ipairs(d.listers) do add(http("GET", "/organizations", d.tokens[u])) end
  elseif scenario == "s5" then
    for _, m in ipairs(d.members) do
      add(http("POST", "/authz/check", d.tokens[m[1]], check_body(d, { m[2] })))
    end
  elseif scenario == "s5b" then
    for _, b in ipairs(d.batches) do
      add(http("POST", "/authz/check", d.tokens[b[1]], check_body(d, b[2])))
    end
  elseif scenario == "s6" then
    for _, m in ipairs(d.members) do
      add(http("POST", "/authz/check", d.service, check_body(d, { m[2] }, "report:read", m[1])))
    end
  elseif scenario == "s6b" then
    for _, b in ipairs(d.batches) do
      add(http("POST", "/authz/check", d.service, check_body(d, b[2], "report:read", b[1])))
    end
  elseif scenario == "s7" then
    for _, m in ipairs(d.members) do
      add(http("POST", "/authz/explain", d.tokens[m[1]],
               string.format('{"organization_id":"%s","permission":"model:read"}', d.orgs[m[2]])))
    end
  elseif scenario == "s8" then
    for _, c in ipairs(d.resource_checks) do
      add(http("POST", "/authz/check", d.tokens[c[1]], resource_check_body(d, c[2], c[3])))
    end
  elseif scenario == "s9" then
    if d.s9 then
      add(http("GET", "/organizations/" .. d.orgs[d.s9[2]] ..
               "/resources?permission=model:update&resource_type=model&limit=100", d.tokens[d.s9[1]]))
    end
  elseif scenario == "s11" then
    for _, m in ipairs(d.members) do
      add(http("POST", "/auth/token", nil, exchange_body(d, m[1], m[2]),
               "application/x-www-form-urlencoded"))
    end
  elseif scenario == "s12" then
    for _, a in ipairs(d.access) do
      add(http("GET", "/organizations/" .. d.orgs[a[2]], a[3]))
    end
  elseif scenario == "s4" or scenario == "s10" then
    -- Thread `id` of `nthreads` takes every nthreads-th pair: no two threads ever hold the same
    -- (org, user), and within a thread a pair is only reused after all its others.
    local all = scenario == "s4" and d.writes or d.group_writes
    for i = id, #all, nthreads do pairs_[#pairs_ + 1] = all[i] end
    for k, p in ipairs(pairs_) do
      pair_of_location[members_path(d, p) .. "/" .. d.users[p[2]]] = k
    end
    if #pairs_ == 0 then error(scenario .. ": no write pairs for thread " .. id) end
  else
    error("unknown scenario " .. tostring(scenario))
  end
  local writes = scenario == "s4" or scenario == "s10"
  if not writes then
    if nrequests == 0 then error(scenario .. ": no requests (empty data for it)") end
    -- Threads start at different places of the same rotation.
    cursor = math.floor((id - 1) * nrequests / nthreads) % nrequests + 1
  end
  -- wrk reads each response (slower) only when a response() function exists.
  if not writes and not probe then response = nil end
end

local function write_request()
  -- A pair whose POST answered 201 is deleted first: its membership is committed, so the
  -- DELETE cannot overtake it.
  if qhead <= qtail then
    local k = queue[qhead]
    queue[qhead] = nil
    qhead = qhead + 1
    added[k] = nil
    local p = pairs_[k]
    return http("DELETE", members_path(d, p) .. "/" .. d.users[p[2]], d.tokens[d.owner[p[1]]])
  end
  local k = wcursor
  for _ = 1, #pairs_ do
    if not added[k] then break end
    k = k % #pairs_ + 1
  end
  wcursor = k % #pairs_ + 1
  local p = pairs_[k]
  return http("POST", members_path(d, p), d.tokens[d.owner[p[1]]],
              '{"user_id":"' .. d.users[p[2]] .. '"}')
end

function request()
  if scenario == "s4" or scenario == "s10" then return write_request() end
  local r = requests[cursor]
  cursor = cursor % nrequests + 1
  return r
end

function response(status, headers, body)
  if scenario == "s4" or scenario == "s10" then
    if status == 201 then
      created = created + 1
      local k = pair_of_location[headers["location"] or headers["Location"] or ""]
      if k then
        added[k] = true
        qtail = qtail + 1
        queue[qtail] = k
      end
    elseif status == 204 then
      removed = removed + 1
    else
      other = other + 1
    end
  end
  if (status < 200 or status > 299) and failure_status == 0 then
    failure_status = status
    failure_body = string.sub(body or "", 1, 300)
  end
end

function done(summary, latency, _)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect, e.read, e.write, e.timeout))
  local c, r, o, fstatus, fbody = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + (t:get("created") or 0)
    r = r + (t:get("removed") or 0)
    o = o + (t:get("other") or 0)
    local s = t:get("failure_status") or 0
    if s ~= 0 and fstatus == 0 then fstatus = s; fbody = t:get("failure_body") or "" end
  end
  if c + r + o > 0 then
    io.write(string.format("BENCH_S4 created=%d removed=%d other=%d pairs_per_s=%.1f\n",
                           c, r, o, summary.requests / 2 / secs))
  end
  if fstatus ~= 0 then
    io.write(string.format("BENCH_FAILURE status=%d body=%s\n", fstatus,
                           (string.gsub(fbody, "[\r\n]", " "))))
  end
end
