-- Resolves the host names of the route state (backend-green-1a2b3c4d, or a swarm
-- service name that answers with one address per replica) through Docker's embedded
-- DNS server, with a per-worker cache.
--
-- nginx resolves an upstream {} block's names only when its config loads, and a
-- proxy_pass with a resolved variable opens a new connection per request. Resolving
-- here and handing the address to the balancer keeps both: names that change at run
-- time and pooled keep-alive connections.
--
-- Each release's containers answer to a name of their own, so a cached address can only
-- ever point at that release. Entries are fresh for TTL seconds; a stale entry is still
-- used while one background query refreshes it. A name that does not resolve is retried
-- after NEGATIVE_TTL.
--
-- Every worker also keeps the names of both colours' releases fresh from a timer (keep,
-- called by router.lua), so that neither the first request after a switch nor the first
-- one after a quiet spell waits on DNS, or fails with it: a request asks Docker's DNS itself
-- only for a name the timer has not seen yet. Those requests are counted (waits()).

local M = {}

local SERVER = "127.0.0.11"
local TTL = 1.0
local NEGATIVE_TTL = 0.2
-- An expired answer is used while a fresh one is asked for only this long: after a quiet
-- spell the addresses may be gone (swarm replaces tasks), so the request waits for DNS.
local STALE_MAX = 5
local TIMEOUT_MS = 1000

local cache = {} -- name -> { addrs = {...}, expires = t, refreshing = bool }
local counters = ngx.shared.deployer_metrics
local WAITS = "dns_waits" -- requests that waited on a query (not a "kind|..." metrics key)
-- A name the route state no longer names is dropped this long after its entry expired.
local FORGET_AFTER = 60

local function query_packet(id, name)
    local parts = { string.char(math.floor(id / 256), id % 256, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0) }
    for label in name:gmatch("[^.]+") do
        parts[#parts + 1] = string.char(#label) .. label
    end
    parts[#parts + 1] = "\0\0\1\0\1" -- end of name, type A, class IN
    return table.concat(parts)
end

local function skip_name(buf, pos)
    while true do
        local len = buf:byte(pos)
        if not len then
            return nil
        end
        if len == 0 then
            return pos + 1
        end
        if len >= 192 then -- compression pointer
            return pos + 2
        end
        pos = pos + 1 + len
    end
end

local function u16(buf, pos)
    local hi, lo = buf:byte(pos, pos + 1)
    if not lo then
        return nil
    end
    return hi * 256 + lo
end

-- Returns a list of IPv4 addresses ({} when the name does not exist), or nil and an error.
local function parse(buf, id)
    if #buf < 12 or u16(buf, 1) ~= id then
        return nil, "bad answer"
    end
    local rcode = buf:byte(4) % 16
    if rcode == 3 then
        return {}
    end
    if rcode ~= 0 then
        return nil, "rcode " .. rcode
    end
    local questions, answers = u16(buf, 5), u16(buf, 7)
    local pos = 13
    for _ = 1, questions do
        pos = skip_name(buf, pos)
        if not pos then
            return nil, "bad question"
        end
        pos = pos + 4
    end
    local addrs = {}
    for _ = 1, answers do
        pos = skip_name(buf, pos)
        if not pos then
            return nil, "bad record"
        end
        local rtype, rdlen = u16(buf, pos), u16(buf, pos + 8)
        if not rdlen then
            return nil, "short record"
        end
        pos = pos + 10
        if rtype == 1 and rdlen == 4 then
            local a, b, c, d = buf:byte(pos, pos + 3)
            addrs[#addrs + 1] = a .. "." .. b .. "." .. c .. "." .. d
        end
        pos = pos + rdlen
    end
    table.sort(addrs)
    return addrs
end

function M.query(name)
    local sock = ngx.socket.udp()
    sock:settimeout(TIMEOUT_MS)
    local ok, err = sock:setpeername(SERVER, 53)
    if not ok then
        return nil, err
    end
    local id = math.random(0, 65535)
    ok, err = sock:send(query_packet(id, name))
    if not ok then
        sock:close()
        return nil, err
    end
    local buf
    buf, err = sock:receive()
    sock:close()
    if not buf then
        return nil, err
    end
    return parse(buf, id)
end

local function store(name, addrs)
    cache[name] = {
        addrs = addrs,
        expires = ngx.now() + (#addrs > 0 and TTL or NEGATIVE_TTL),
    }
end

local function refresh(premature, name)
    if premature then
        return
    end
    local addrs = M.query(name)
    if addrs then
        store(name, addrs)
    elseif cache[name] then
        cache[name].refreshing = false -- keep the stale answer; try again on the next request
    end
end

-- The addresses of a name: from the cache, or one query (only for a name not seen yet).
function M.resolve(name)
    local entry = cache[name]
    local now = ngx.now()
    if entry then
        if entry.expires > now then
            return entry.addrs
        end
        if #entry.addrs > 0 and now - entry.expires < STALE_MAX then
            if not entry.refreshing then
                entry.refreshing = true
                ngx.timer.at(0, refresh, name)
            end
            return entry.addrs
        end
    end
    counters:incr(WAITS, 1, 0)
    local addrs, err = M.query(name)
    if not addrs then
        return nil, err
    end
    store(name, addrs)
    return addrs
end

-- From this worker's timer: ask again for every name in `wanted` (a set) whose entry
-- expires within `ahead` seconds, or that has none; drop the entries of names no longer
-- wanted. A failed query keeps the old answer, which requests go on using while it is
-- fresh, or stale (up to STALE_MAX).
function M.keep(wanted, ahead)
    local now = ngx.now()
    for name in pairs(wanted) do
        local entry = cache[name]
        if not entry or entry.expires - now < ahead then
            local addrs = M.query(name)
            if addrs then
                store(name, addrs)
            end
        end
    end
    for name, entry in pairs(cache) do
        if not wanted[name] and entry.expires < now - FORGET_AFTER then
            cache[name] = nil
        end
    end
end

-- How many requests waited on a DNS query, since the edge started (all workers).
function M.waits()
    return counters:get(WAITS) or 0
end

return M
