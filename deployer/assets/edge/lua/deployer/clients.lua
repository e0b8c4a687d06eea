-- Per client address: the live route's judged requests that answered 5xx, and those whose
-- upstream took longer than 100 ms to its response header (metrics.lua decides which
-- requests are judged), so that the post-release watch can leave out the addresses with the
-- most of them: one address (an attacker, a broken client, a crawler) cannot decide its
-- verdict alone.
--
-- The address is the client's after the real-IP module ($binary_remote_addr: behind the
-- proxies of edge.trusted_proxies, the real client's). An IPv6 address counts by its /64,
-- which one host usually holds whole.
--
-- Only those requests cost anything here, and in the log phase only a table of this
-- worker's (metrics.lua's pending counts); the shared dict is written by the flush timer.
-- Memory is bounded: the counts live in their own shared dict (deployer_clients), never in
-- deployer_metrics, so that a flood of addresses cannot push the metrics out; when it is
-- full, the least recently counted keys go first (an address not seen lately, an old slot).
-- Keys, with <k> "e" (5xx) or a latency bucket, and the address in base64:
--   w<slot>|route|colour|release|<k>|<address>   the 5-second slots of the windowed view
--   t|route|colour|release|<k>|<address>         since the edge started (a watch's end)

local M = {}

local dict = ngx.shared.deployer_clients
local encode = ngx.encode_base64

-- Log phase: count this request for its client in the series' pending counts `p`. `slow`:
-- its upstream latency bucket when over the tracked bound; `error`: it answered 5xx.
function M.note(p, slow, error)
    local addr = ngx.var.binary_remote_addr
    if #addr == 16 then
        addr = addr:sub(1, 8)
    end
    local by_addr = p.cl
    if not by_addr then
        by_addr = {}
        p.cl = by_addr
    end
    local c = by_addr[addr]
    if not c then
        c = {}
        by_addr[addr] = c
    end
    if error then
        c.e = (c.e or 0) + 1
    end
    if slow then
        c[slow] = (c[slow] or 0) + 1
    end
end

-- Flush timer: one series' pending per-address counts into the shared dict.
function M.flush(series, by_addr, slot, ttl)
    local windowed, total = "w" .. slot .. "|" .. series .. "|", "t|" .. series .. "|"
    for addr, c in pairs(by_addr) do
        local tail = "|" .. encode(addr)
        for k, n in pairs(c) do
            dict:incr(windowed .. k .. tail, n, 0, ttl)
            dict:incr(total .. k .. tail, n, 0)
        end
    end
end

-- series -> address -> { e = n, [bucket] = n }, of the windowed view from `first_slot` on,
-- or since the edge started (nil).
local function collect(first_slot)
    local by_series = {}
    for _, key in ipairs(dict:get_keys(0)) do
        local slot, series, k, addr
        if first_slot then
            slot, series, k, addr = key:match("^w(%d+)|([^|]*|[^|]*|[^|]*)|([^|]*)|(.*)$")
            if slot and tonumber(slot) < first_slot then
                series = nil
            end
        else
            series, k, addr = key:match("^t|([^|]*|[^|]*|[^|]*)|([^|]*)|(.*)$")
        end
        local n = series and dict:get(key)
        if n then
            local addrs = by_series[series] or {}
            by_series[series] = addrs
            local c = addrs[addr] or {}
            addrs[addr] = c
            k = tonumber(k) or k
            c[k] = (c[k] or 0) + n
        end
    end
    return by_series
end

local function greater(a, b)
    return a > b
end

-- The sum of the `top` largest values.
local function top_sum(values, top)
    table.sort(values, greater)
    local sum = 0
    for i = 1, math.min(top, #values) do
        sum = sum + values[i]
    end
    return sum
end

-- The metrics view's per-client families (metrics.lua's render, with ?top=K):
--   <prefix>client_addresses{...}                   addresses with a counted request
--   <prefix>top_client_5xx{...,top="K"}             the 5xx of the K addresses with the most
--   <prefix>top_client_slow{...,top="K",above="b"}  the requests slower than b (the upstream's
--                                                   header time) of the K addresses with the
--                                                   most such, for each bound b from 100 ms
-- `buckets`: the latency bounds; `track`: the first tracked bound's index.
function M.render(out, prefix, labels, first_slot, top, buckets, track)
    local by_series = collect(first_slot)
    local addresses, errors, slow = {}, {}, {}
    for series, addrs in pairs(by_series) do
        local tags, n, e, above = labels(series), 0, {}, {}
        for i = track, #buckets do
            above[i] = {}
        end
        for _, c in pairs(addrs) do
            n = n + 1
            e[n] = c.e or 0
            local running = c[#buckets + 1] or 0 -- requests slower than the last bound
            for i = #buckets, track, -1 do
                above[i][n] = running
                running = running + (c[i] or 0)
            end
        end
        addresses[#addresses + 1] = string.format("%sclient_addresses{%s} %d", prefix, tags, n)
        errors[#errors + 1] = string.format('%stop_client_5xx{%s,top="%d"} %d', prefix, tags, top, top_sum(e, top))
        for i = track, #buckets do
            slow[#slow + 1] = string.format(
                '%stop_client_slow{%s,top="%d",above="%s"} %d',
                prefix,
                tags,
                top,
                tostring(buckets[i]),
                top_sum(above[i], top)
            )
        end
    end
    for _, family in ipairs({ { "client_addresses", addresses }, { "top_client_5xx", errors }, { "top_client_slow", slow } }) do
        out[#out + 1] = "# TYPE " .. prefix .. family[1] .. " gauge"
        for _, line in ipairs(family[2]) do
            out[#out + 1] = line
        end
    end
end

-- The keys of the releases metrics.lua forgets (a set of release ids).
function M.forget(releases)
    if next(releases) == nil then
        return
    end
    for _, key in ipairs(dict:get_keys(0)) do
        local release = key:match("^%w+|[^|]*|[^|]*|([^|]*)|")
        if release and releases[release] then
            dict:delete(key)
        end
    end
end

return M
