-- Counters per route kind (live, preview, health), colour and release: requests by
-- status class and two latency histograms. Exact counts (every request is counted, nothing
-- is sampled).
--
-- The post-release watch judges the release's own work, not what a client or the edge did:
--   - request_duration_seconds is the client's whole exchange (now() - request start), as
--     users saw it; upstream_header_seconds is the upstream's time to its response header
--     ($upstream_header_time; an exchange of at most 100 ms in all counts as that), which a
--     slow upload (buffered before the upstream is asked), a slow download or a stream (SSE,
--     WebSocket) does not stretch: judged requests only.
--   - answers the edge made itself (the balancer never ran: a limit's 429, max_in_flight's 503, a
--     body timeout's 408) are class "edge_<status>"; requests whose client went away (499)
--     "aborted"; upgrades (101) "1xx". None is judged. The router's 502 for a service of the
--     release that does not resolve (its containers are gone) is the release's "5xx".
--   - per client address (clients.lua): judged 5xx and requests slower than 100 ms.
--
-- A request only adds to this worker's own Lua table (no lock, no shared memory); every
-- FLUSH seconds a timer adds the table to the shared dict. A reader of the metrics first
-- flushes its own worker and waits (at most about FLUSH) until every other worker has
-- flushed since the read began, so what it sees includes every request finished before.
--
-- Views, in the Prometheus text format on the preview server:
--   /_deployer/metrics             cumulative, since the edge started; also the requests
--                                  that waited on a DNS query (dns.lua)
--   /_deployer/metrics?window=60   the last N seconds (N <= 120), from 5-second slots;
--                                  `deployer status` and the post-release watch read this
--   ...&top=K (either view)        the live route's per-client figures (clients.lua)
-- The cumulative view also holds the public traffic's figures per service and configured
-- route prefix (service_metrics.lua, for Prometheus and Grafana: docs/observability.md).

local inflight = require("deployer.inflight")
local clients = require("deployer.clients")
local services = require("deployer.service_metrics") -- per service and prefix, beside these

local M = {}

local dict = ngx.shared.deployer_metrics
local now, start_time, floor = ngx.now, ngx.req.start_time, math.floor
local exiting = ngx.worker.exiting

-- Upper bounds of the latency buckets, in seconds. Thresholds worth checking exactly
-- (a p99 of 0.5 s, say) are bucket bounds, so "more than 1 % above 0.5 s" is an exact count.
M.BUCKETS = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30 }
local NBUCKETS = #M.BUCKETS
local SLOT = 5
local SLOT_TTL = 150
local FLUSH = 0.25
M.SLOT, M.FLUSH = SLOT, FLUSH

local CLASSES = { "1xx", "2xx", "3xx", "4xx", "5xx" }
-- "edge_429", ...: built once per status
local EDGE = setmetatable({}, {
    __index = function(t, status)
        local class = "edge_" .. status
        t[status] = class
        return class
    end,
})
-- Judged requests of the live route slower than this bucket's bound (100 ms) are counted per
-- client address too.
local TRACK = 8
M.TRACK = TRACK

local function bucket(seconds)
    for i = 1, NBUCKETS do
        if seconds <= M.BUCKETS[i] then
            return i
        end
    end
    return NBUCKETS + 1
end

-- This worker's counts since its last flush: series -> { [class] = n, h = { [bucket] = n },
-- sum = s, u = { [bucket] = n }, usum = s, cl = clients.lua's per-address counts or nil }
local pending = {}
-- "route|colour|release" strings, built once per (route, colour, release)
local names = {}

local function series_of(route, colour, release)
    local by_route = names[route]
    if not by_route then
        by_route = {}
        names[route] = by_route
    end
    local by_colour = by_route[colour]
    if not by_colour then
        by_colour = {}
        by_route[colour] = by_colour
    end
    local series = by_colour[release]
    if not series then
        series = route .. "|" .. colour .. "|" .. release
        by_colour[release] = series
    end
    return series
end

-- The upstream's time to its response header. An exchange of at most FAST seconds in all
-- is taken as that (an upper bound, near enough, and no variable to look up: most requests
-- are fast); otherwise $upstream_header_time: "0.012", or "0.002, 0.010" when a second peer
-- was tried (their sum), "-" for a peer that sent no header (then the whole exchange).
local FAST = M.BUCKETS[TRACK]
local function header_seconds(total)
    if total <= FAST then
        return total
    end
    local text = ngx.var.upstream_header_time or "-"
    local seconds = tonumber(text)
    if seconds then
        return seconds
    end
    local sum, any = 0, false
    for part in text:gmatch("[%d.]+") do
        sum, any = sum + (tonumber(part) or 0), true
    end
    return any and sum or total
end

function M.log()
    local ctx = ngx.ctx
    if ctx.inflight then
        inflight.leave(ctx.inflight) -- the slot router.lua took (services.*.max_in_flight)
    end
    local route = ctx.route
    if not route then -- an internal redirect emptied ngx.ctx: the router's variables hold on
        local slot = ngx.var.deployer_inflight
        if slot and slot ~= "" then
            inflight.leave(slot)
        end
        services.orphan()
        return
    end
    local status = ngx.status
    -- $request_time (whole milliseconds, so that a bucket bound is exact), without a
    -- variable lookup and a string to parse
    local seconds = floor((now() - start_time()) * 1000 + 0.5) / 1000
    local series = series_of(route, ctx.colour, ctx.release)
    local p = pending[series]
    if not p then
        p = { h = {}, sum = 0, u = {}, usum = 0 }
        pending[series] = p
    end
    local b = bucket(seconds)
    p.h[b] = (p.h[b] or 0) + 1
    p.sum = p.sum + seconds
    -- the balancer ran (ctx.tries): the upstream was asked; an external route has no balancer
    local asked = ctx.tries or route == "external" and ngx.var.upstream_addr
    local class, upstream
    if status == 499 then
        class = "aborted"
    elseif asked then
        class = CLASSES[floor(status / 100)] or "other"
        if status >= 200 then
            upstream = header_seconds(seconds)
        end
    elseif status == 502 then
        class, upstream = "5xx", seconds -- the router found no address of the release's service
    else
        class = EDGE[status]
    end
    p[class] = (p[class] or 0) + 1
    if ctx.svc then -- public traffic of a configured route (router.lua)
        services.log(ctx.svc, status, b, seconds, asked)
    end
    if upstream then
        local ub = bucket(upstream)
        p.u[ub] = (p.u[ub] or 0) + 1
        p.usum = p.usum + upstream
        if route == "live" and (ub > TRACK or status >= 500) then
            clients.note(p, ub > TRACK and ub, status >= 500)
        end
    end
    if exiting() then
        -- a worker draining after a reload: its flush timer has fired for the last time,
        -- and the requests it still finishes (the slowest, streams) must count too
        M.flush()
    end
end

-- Adds this worker's pending counts to the shared dict, then notes when it did.
local function flush()
    local counts = pending
    pending = {}
    local slot = math.floor(ngx.now() / SLOT)
    for series, p in pairs(counts) do
        for key, n in pairs(p) do
            if type(n) == "number" and key ~= "sum" and key ~= "usum" then
                dict:incr("c|" .. series .. "|" .. key, n, 0)
                dict:incr("wc|" .. slot .. "|" .. series .. "|" .. key, n, 0, SLOT_TTL)
            end
        end
        for b, n in pairs(p.h) do
            dict:incr("h|" .. series .. "|" .. b, n, 0)
            dict:incr("wh|" .. slot .. "|" .. series .. "|" .. b, n, 0, SLOT_TTL)
        end
        for b, n in pairs(p.u) do
            dict:incr("u|" .. series .. "|" .. b, n, 0)
            dict:incr("wu|" .. slot .. "|" .. series .. "|" .. b, n, 0, SLOT_TTL)
        end
        dict:incr("s|" .. series, p.sum, 0)
        dict:incr("us|" .. series, p.usum, 0)
        if p.cl then
            clients.flush(series, p.cl, slot, SLOT_TTL)
        end
    end
    services.flush()
    ngx.update_time()
    dict:set("flushed|" .. ngx.worker.id(), ngx.now())
end
M.flush = flush

-- The series of releases that no colour holds any more. Without this their keys would stay
-- until the dict needs room, and every read scans every key. A release is forgotten once it
-- has been gone for `grace` seconds: worker 0 does it with GONE_GRACE, long after the
-- release's containers drained and every scraper read its last counts; `deployer prune`
-- (the control socket's /forget-metrics) with 0. When a sweep first found a release gone is
-- in the dict ("g|<release>"), so every worker keeps the same clock and a reload restarts
-- none. The 5-second slots of the windowed view expire on their own (SLOT_TTL); they go too.
-- Returns the releases forgotten.
local GONE_GRACE = 600
function M.forget(grace)
    local state, held = require("deployer.state"), {}
    for _, rec in pairs(state.current().colours) do
        held[rec.release] = true
    end
    local t, doomed, forgotten, waiting, marks = ngx.now(), {}, {}, {}, {}
    for _, key in ipairs(dict:get_keys(0)) do
        -- c|route|colour|release|class, h|...|bucket, u|...|bucket, s|route|colour|release,
        -- us|..., wc|slot|..., wh|slot|..., wu|slot|...
        local kind = key:match("^(%a+)|")
        local release = (kind == "s" or kind == "us") and key:match("|([^|]*)$")
            or (kind == "c" or kind == "h" or kind == "u") and key:match("^%a+|[^|]*|[^|]*|([^|]*)|")
            or (kind == "wc" or kind == "wh" or kind == "wu") and key:match("^%a+|%d+|[^|]*|[^|]*|([^|]*)|")
        if kind == "g" then
            marks[#marks + 1] = key
        elseif state.is_release(release) and not held[release] and not forgotten[release] then
            local since = waiting[release] or dict:get("g|" .. release) or t
            if t - since >= grace then
                doomed[#doomed + 1] = key
                forgotten[release] = true
            else
                waiting[release] = since
            end
        elseif forgotten[release] then
            doomed[#doomed + 1] = key
        end
    end
    for _, key in ipairs(doomed) do
        dict:delete(key)
    end
    for release, since in pairs(waiting) do
        dict:safe_set("g|" .. release, since) -- never evicts a series for it
    end
    for _, key in ipairs(marks) do -- releases forgotten, held again, or without keys left
        if not waiting[key:sub(3)] then
            dict:delete(key)
        end
    end
    clients.forget(forgotten)
    local list = {}
    for release in pairs(forgotten) do
        list[#list + 1] = release
    end
    table.sort(list)
    return list
end

-- The control socket's POST /forget-metrics[?grace=<seconds>]: forget the releases gone for
-- that long (by default every gone release, now).
function M.forget_handler()
    local grace = math.max(0, tonumber(ngx.var.arg_grace) or 0)
    ngx.header["Content-Type"] = "text/plain"
    ngx.say("forgot ", table.concat(M.forget(grace), " "))
end

-- Every worker flushes every FLUSH seconds (init_worker); worker 0 forgets gone releases.
function M.start()
    -- also when the worker exits (premature): its last counts are not lost
    local ok, err = ngx.timer.every(FLUSH, flush)
    if not ok then
        ngx.log(ngx.ERR, "metrics: cannot start the flush timer: ", err)
    end
    if ngx.worker.id() == 0 then
        ngx.timer.every(60, function(premature)
            if not premature then
                M.forget(GONE_GRACE)
            end
        end)
    end
end

-- The views (metrics_view.lua), for the preview server's /_deployer/metrics.
function M.render()
    return require("deployer.metrics_view").render()
end

return M
