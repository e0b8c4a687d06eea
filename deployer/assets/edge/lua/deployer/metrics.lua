-- Counters per route kind (live, preview, health), colour and release: requests by
-- status class and a latency histogram. Exact counts (every request is counted, nothing
-- is sampled).
--
-- A request only adds to this worker's own Lua table (no lock, no shared memory); every
-- FLUSH seconds a timer adds the table to the shared dict. A reader of the metrics first
-- flushes its own worker and waits (at most about FLUSH) until every other worker has
-- flushed since the read began, so what it sees includes every request finished before.
--
-- Two views, both in the Prometheus text format on the preview server:
--   /_deployer/metrics             cumulative, since the edge started; also the requests
--                                  that waited on a DNS query (dns.lua)
--   /_deployer/metrics?window=60   the last N seconds (N <= 120), from 5-second slots;
--                                  `deployer status` and the post-release watch read this

local inflight = require("deployer.inflight")

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
local MAX_WINDOW = 120
local FLUSH = 0.25

local CLASSES = { "1xx", "2xx", "3xx", "4xx", "5xx" }

local function bucket(seconds)
    for i = 1, NBUCKETS do
        if seconds <= M.BUCKETS[i] then
            return i
        end
    end
    return NBUCKETS + 1
end

-- This worker's counts since its last flush: series -> { [class] = n, h = { [bucket] = n }, sum = s }
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

function M.log()
    local ctx = ngx.ctx
    if ctx.inflight then
        inflight.leave(ctx.inflight) -- the slot router.lua took (services.*.max_in_flight)
    end
    local route = ctx.route
    if not route then
        return
    end
    local status = ngx.status
    local class = CLASSES[floor(status / 100)] or "other"
    -- $request_time (whole milliseconds, so that a bucket bound is exact), without a
    -- variable lookup and a string to parse
    local seconds = floor((now() - start_time()) * 1000 + 0.5) / 1000
    local series = series_of(route, ctx.colour, ctx.release)
    local p = pending[series]
    if not p then
        p = { h = {}, sum = 0 }
        pending[series] = p
    end
    p[class] = (p[class] or 0) + 1
    local b = bucket(seconds)
    p.h[b] = (p.h[b] or 0) + 1
    p.sum = p.sum + seconds
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
            if key ~= "h" and key ~= "sum" then
                dict:incr("c|" .. series .. "|" .. key, n, 0)
                dict:incr("wc|" .. slot .. "|" .. series .. "|" .. key, n, 0, SLOT_TTL)
            end
        end
        for b, n in pairs(p.h) do
            dict:incr("h|" .. series .. "|" .. b, n, 0)
            dict:incr("wh|" .. slot .. "|" .. series .. "|" .. b, n, 0, SLOT_TTL)
        end
        dict:incr("s|" .. series, p.sum, 0)
    end
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
    local held = {}
    for _, rec in pairs(require("deployer.state").current().colours) do
        held[rec.release] = true
    end
    local t, doomed, forgotten, waiting, marks = ngx.now(), {}, {}, {}, {}
    for _, key in ipairs(dict:get_keys(0)) do
        -- c|route|colour|release|class, h|...|bucket, s|route|colour|release, wc|slot|..., wh|slot|...
        local kind = key:match("^(%a+)|")
        local release = kind == "s" and key:match("|([^|]*)$")
            or (kind == "c" or kind == "h") and key:match("^%a+|[^|]*|[^|]*|([^|]*)|")
            or (kind == "wc" or kind == "wh") and key:match("^%a+|%d+|[^|]*|[^|]*|([^|]*)|")
        if kind == "g" then
            marks[#marks + 1] = key
        elseif release and release:match("^[0-9a-f]+$") and not held[release] and not forgotten[release] then
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

-- Until every worker has flushed what it counted before `since` (bounded: a worker that
-- is gone, or stuck, does not hold a reader for long).
local function wait_flushed(since)
    flush()
    local workers = ngx.worker.count()
    for _ = 1, math.ceil(4 * FLUSH / 0.02) do
        local all = true
        for id = 0, workers - 1 do
            if (dict:get("flushed|" .. id) or 0) < since then
                all = false
                break
            end
        end
        if all then
            return
        end
        ngx.sleep(0.02)
    end
end

local function labels(series)
    local route, colour, release = series:match("^([^|]*)|([^|]*)|([^|]*)$")
    return string.format('route="%s",colour="%s",release="%s"', route, colour, release)
end

local function le(i)
    return i > NBUCKETS and "+Inf" or tostring(M.BUCKETS[i])
end

-- Sums the dict's keys into counts[series][class] and hist[series][bucket].
local function collect(window)
    local counts, hist, sums = {}, {}, {}
    local first_slot
    if window then
        first_slot = math.floor(ngx.now() / SLOT) - math.ceil(window / SLOT) + 1
    end
    for _, key in ipairs(dict:get_keys(0)) do
        local value = dict:get(key)
        if value then
            local kind, rest = key:match("^(%a+)|(.*)$")
            local windowed = kind == "wc" or kind == "wh"
            local wanted = not window and not windowed
            if window and windowed then
                local slot
                slot, rest = rest:match("^(%d+)|(.*)$")
                wanted = tonumber(slot) >= first_slot
            end
            if wanted then
                if kind == "c" or kind == "wc" then
                    local series, class = rest:match("^(.*)|([^|]*)$")
                    counts[series] = counts[series] or {}
                    counts[series][class] = (counts[series][class] or 0) + value
                elseif kind == "h" or kind == "wh" then
                    local series, b = rest:match("^(.*)|(%d+)$")
                    hist[series] = hist[series] or {}
                    hist[series][tonumber(b)] = (hist[series][tonumber(b)] or 0) + value
                elseif kind == "s" then
                    sums[rest] = value
                end
            end
        end
    end
    return counts, hist, sums
end

function M.render()
    local window = tonumber(ngx.var.arg_window)
    if window then
        window = math.max(SLOT, math.min(MAX_WINDOW, window))
    end
    ngx.update_time()
    wait_flushed(ngx.now())
    local counts, hist, sums = collect(window)
    local prefix = window and "deployer_window_" or "deployer_"
    local out = {}
    if window then
        out[#out + 1] = string.format("# window %d seconds, in %d-second slots", window, SLOT)
    end
    out[#out + 1] = "# TYPE " .. prefix .. "requests_total counter"
    for series, by_class in pairs(counts) do
        for class, n in pairs(by_class) do
            out[#out + 1] = string.format('%srequests_total{%s,class="%s"} %d', prefix, labels(series), class, n)
        end
    end
    out[#out + 1] = "# TYPE " .. prefix .. "request_duration_seconds histogram"
    for series, buckets in pairs(hist) do
        local running = 0
        for i = 1, NBUCKETS + 1 do
            running = running + (buckets[i] or 0)
            out[#out + 1] =
                string.format('%srequest_duration_seconds_bucket{%s,le="%s"} %d', prefix, labels(series), le(i), running)
        end
        out[#out + 1] = string.format("%srequest_duration_seconds_count{%s} %d", prefix, labels(series), running)
        if sums[series] then
            out[#out + 1] = string.format("%srequest_duration_seconds_sum{%s} %.3f", prefix, labels(series), sums[series])
        end
    end
    if not window then
        out[#out + 1] = "# TYPE deployer_dns_waits_total counter"
        out[#out + 1] = "deployer_dns_waits_total " .. require("deployer.dns").waits()
    end
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say(table.concat(out, "\n"))
end

return M
