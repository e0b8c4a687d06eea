-- Swarm mode: every public edge replica serves the route state of the control service.
--
-- On a single Docker host there is one edge, and this module only commits what state.lua
-- read (role "single": no /etc/deployer/sync.conf). On a swarm (docs/scale-out.md):
--
--   control   the edge container the deployer's scripts run in (it holds the route state
--             files, the lock and the history in its volume). When its files change, it
--             pushes the whole state to every public replica (the addresses of the swarm
--             service <name>-infra_edge, asked from Docker's DNS at that moment) and commits
--             it itself only when every replica confirmed that sequence number. If one did
--             not, it pushes the previous state back to those that took the new one, keeps
--             its own, and the writer's /reload fails: every replica switches, or none does.
--   replica   a public edge: it never reads files. It takes pushes from the control, and
--             pulls the control's committed state when it starts (before it listens) and
--             every second after, so a replica that was away, or started later, catches up.
--
-- Both directions go through /_deployer/sync on the internal server (port 8081, never
-- published in swarm mode), authenticated by a token that swarm gives both as a secret
-- (a file whose one line is the HTTP header); so do the control's sum of the replicas'
-- metrics and its status page's samples of their figures (page_sum.lua). From the network,
-- that server answers these paths alone, and only with the token (the site's
-- $deployer_admin). The state travels as state.lua's blob: the files' texts joined by NUL
-- bytes, with a sequence number.

local dns = require("deployer.dns")

local M = {}

local CONF = "/etc/deployer/sync.conf"
local TOKEN_FILE = "/run/secrets/deployer_sync"
local HEADER = "X-Deployer-Sync-Token"
local PUSH_TIMEOUT_MS = 2000
local PULL_TIMEOUT_MS = 900
local LOCK_SECONDS = 15

local shared = ngx.shared.deployer_state

local function read(path)
    local fh = io.open(path, "rb")
    if not fh then
        return ""
    end
    local text = fh:read("*a") or ""
    fh:close()
    return text
end

-- Read once, when the master process loads the module (as root: the token is 0400).
local conf = {}
for line in read(CONF):gmatch("[^\n]+") do
    local key, value = line:match("^(%S+) (%S+)$")
    if key then
        conf[key] = value
    end
end
local token = read(TOKEN_FILE):match("^[%w-]+:%s*(%S+)")
conf.port = tonumber(conf.port) or 8081

M.role = (conf.role == "control" or conf.role == "replica") and token and conf.role or "single"
M.replica = M.role == "replica"

local function apply(seq, blob)
    shared:set("blob", blob)
    shared:incr("gen", 1, 0)
    shared:set("sync_seq", seq)
end

local function remember(seq, blob)
    shared:set("sync_published", seq .. "\n" .. blob)
end

local function next_seq()
    local last = shared:get("sync_last") or 0
    local seq = math.max(last + 1, math.floor(ngx.now() * 1000))
    shared:set("sync_last", seq)
    return seq
end

-- One HTTP/1.0 exchange over a cosocket; returns the status and the body.
local function http(ip, method, body, headers, timeout, path)
    local sock = ngx.socket.tcp()
    sock:settimeout(timeout)
    local ok, err = sock:connect(ip, conf.port)
    if not ok then
        return nil, err
    end
    local lines = { method .. " " .. (path or "/_deployer/sync") .. " HTTP/1.0", "Host: edge", HEADER .. ": " .. token }
    for name, value in pairs(headers) do
        lines[#lines + 1] = name .. ": " .. value
    end
    lines[#lines + 1] = "Content-Length: " .. #(body or "")
    ok, err = sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
    if not ok then
        sock:close()
        return nil, err
    end
    local answer
    answer, err = sock:receive("*a")
    sock:close()
    if not answer then
        return nil, err
    end
    local status = tonumber(answer:match("^HTTP/%d%.%d (%d%d%d)"))
    local payload = answer:match("\r\n\r\n(.*)$") or ""
    return status, payload
end

local function push(ip, seq, blob, attempts, timeout)
    local last
    for attempt = 1, attempts do
        local status, body = http(ip, "POST", blob, { ["X-Deployer-Sync-Seq"] = seq }, timeout)
        if status == 200 and body:match("^ok (%d+)") == tostring(seq) then
            return true
        end
        last = status and ("HTTP " .. status) or body
        if attempt < attempts then
            ngx.sleep(0.2)
        end
    end
    return nil, ip .. ": " .. tostring(last)
end

-- Push to every address in parallel; returns the addresses that confirmed, and the failures.
local function push_all(addrs, seq, blob, attempts, timeout)
    local threads = {}
    for i, ip in ipairs(addrs) do
        threads[i] = ngx.thread.spawn(push, ip, seq, blob, attempts or 2, timeout or PUSH_TIMEOUT_MS)
    end
    local done, failures = {}, {}
    for i, thread in ipairs(threads) do
        local alive, ok, err = ngx.thread.wait(thread)
        if alive and ok then
            done[#done + 1] = addrs[i]
        else
            failures[#failures + 1] = err or tostring(ok)
        end
    end
    return done, failures
end

local function unlock()
    shared:delete("sync_lock")
end

-- state.lua calls this when the files hold a new state: `commit(blob)` makes it this
-- edge's own. Returns true (committed), false (nothing to do) or nil and why not.
function M.publish(blob, commit)
    if M.role ~= "control" or ngx.get_phase() == "init" then
        commit(blob)
        if M.role == "control" then
            remember(os.time() * 1000, blob)
        end
        return true
    end
    local waited = 0
    while not shared:add("sync_lock", true, LOCK_SECONDS) do
        if ngx.get_phase() == "timer" or waited > 5 then
            return nil, "another change of the route state is being published"
        end
        ngx.sleep(0.02)
        waited = waited + 0.02
    end
    if blob == shared:get("blob") then
        unlock()
        return false
    end
    local old = shared:get("blob") or ""
    local addrs, err = dns.query(conf.replicas)
    if not addrs then
        unlock()
        return nil, "cannot resolve the edge replicas (" .. conf.replicas .. "): " .. tostring(err)
    end
    local seq = next_seq()
    local done, failures = push_all(addrs, seq, blob)
    if #failures > 0 then
        -- The previous state goes back everywhere, with a newer sequence number: a replica
        -- that takes the failed push late (it was paused, say) then refuses it as stale.
        push_all(addrs, next_seq(), old, 1, 500)
        unlock()
        local why = table.concat(failures, "; ")
        ngx.log(ngx.ERR, "route state not published, every replica kept the previous one: ", why)
        return nil, "not every edge replica took the new route state (" .. why .. ")"
    end
    commit(blob)
    remember(seq, blob)
    unlock()
    return true
end

-- A replica's view: from the control, at start (blocking, before nginx listens) and from
-- the reconcile timer every second. A pull that started before the last push is dropped.
function M.pull()
    if ngx.get_phase() == "init" then
        local cmd = "curl -sf --max-time 2 -H @" .. TOKEN_FILE .. " http://" .. conf.control .. ":" .. conf.port
            .. "/_deployer/sync 2>/dev/null"
        local fh = io.popen(cmd)
        local body = fh and fh:read("*a") or ""
        if fh then
            fh:close()
        end
        local seq, blob = body:match("^(%d+)\n(.*)$")
        if seq then
            apply(tonumber(seq), blob)
            return true
        end
        return false
    end
    ngx.update_time()
    local started = ngx.now()
    local addrs = dns.query(conf.control)
    if not addrs or #addrs == 0 then
        return false
    end
    local status, body = http(addrs[1], "GET", nil, {}, PULL_TIMEOUT_MS)
    if status ~= 200 then
        return false
    end
    local seq, blob = body:match("^(%d+)\n(.*)$")
    seq = tonumber(seq)
    if not seq or blob == shared:get("blob") or (shared:get("sync_pushed_at") or 0) >= started then
        return false
    end
    apply(math.max(seq, shared:get("sync_seq") or 0), blob)
    return true
end

-- From another edge (not 127.0.0.1 nor the host: $deployer_admin of the site), an admin
-- path answers only with the token: the site lets such requests through in swarm mode alone.
function M.allowed()
    return ngx.var.deployer_admin ~= "0" or (token ~= nil and ngx.req.get_headers()[HEADER] == token)
end

-- GET `path` from every public replica at once (their addresses from Docker's DNS now), and
-- from this edge first with `with_self`: a list of { ip, body } of those that answered 200.
function M.ask(path, with_self)
    local sources = with_self and { "127.0.0.1" } or {}
    for _, ip in ipairs(dns.query(conf.replicas) or {}) do
        sources[#sources + 1] = ip
    end
    local threads, answers = {}, {}
    for i, ip in ipairs(sources) do
        threads[i] = ngx.thread.spawn(http, ip, "GET", nil, {}, PULL_TIMEOUT_MS, path)
    end
    for i, thread in ipairs(threads) do
        local _, status, body = ngx.thread.wait(thread)
        if status == 200 then
            answers[#answers + 1] = { ip = sources[i], body = body }
        end
    end
    return answers
end

-- /_deployer/metrics: on the control, its own counters (its probes) plus every public
-- replica's (the users' requests), summed line by line: counters and cumulative histogram
-- buckets add up across edges. A replica that does not answer is left out.
function M.metrics()
    if not M.allowed() then
        return ngx.exit(403)
    end
    local metrics = require("deployer.metrics")
    if M.role ~= "control" or ngx.var.arg_edge_only then
        return metrics.render()
    end
    local args = ngx.var.args and ("?" .. ngx.var.args .. "&") or "?"
    local keys, sums, comments, types = {}, {}, {}, {}
    for _, answer in ipairs(M.ask("/_deployer/metrics" .. args .. "edge_only=1", true)) do
        for line in answer.body:gmatch("[^\n]+") do
            local key, value = line:match("^([^#].-) (%S+)$")
            if key and tonumber(value) then
                if not sums[key] then
                    keys[#keys + 1] = key
                end
                sums[key] = (sums[key] or 0) + tonumber(value)
            elseif line:sub(1, 1) == "#" and not comments[line] then
                comments[line] = true
                types[#types + 1] = { line = line, family = line:match("^# TYPE (%S+) ") }
            end
        end
    end
    -- Each TYPE line, then the samples of its family (the other comments first).
    local out, used = {}, {}
    for _, t in ipairs(types) do
        if not t.family then
            out[#out + 1] = t.line
        end
    end
    for _, t in ipairs(types) do
        if t.family then
            out[#out + 1] = t.line
            for _, key in ipairs(keys) do
                if not used[key] and key:sub(1, #t.family) == t.family then
                    used[key] = true
                    local v = sums[key]
                    out[#out + 1] = key .. " " .. (v % 1 == 0 and string.format("%d", v) or string.format("%.3f", v))
                end
            end
        end
    end
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say(table.concat(out, "\n"))
end

-- /_deployer/sync: a push to a replica (POST), or a replica's pull from the control (GET).
function M.handler()
    if M.role == "single" then
        return ngx.exit(404)
    end
    if ngx.req.get_headers()[HEADER] ~= token then
        return ngx.exit(403)
    end
    ngx.header["Content-Type"] = "text/plain"
    if ngx.req.get_method() == "GET" and M.role == "control" then
        local published = shared:get("sync_published")
        if shared:get("sync_lock") or not published then
            return ngx.exit(409) -- a change is being published: ask again in a second
        end
        ngx.print(published)
        return
    end
    if ngx.req.get_method() ~= "POST" or M.role ~= "replica" then
        return ngx.exit(404)
    end
    ngx.req.read_body()
    local blob = ngx.req.get_body_data()
    local seq = tonumber(ngx.req.get_headers()["X-Deployer-Sync-Seq"])
    if not blob or not seq then
        return ngx.exit(400)
    end
    if seq <= (shared:get("sync_seq") or 0) then
        ngx.status = 409
        ngx.say("stale ", seq, ": this edge has ", shared:get("sync_seq"))
        return ngx.exit(409)
    end
    apply(seq, blob)
    shared:set("sync_pushed_at", ngx.now())
    ngx.say("ok ", seq, " gen ", shared:get("gen"))
end

return M
