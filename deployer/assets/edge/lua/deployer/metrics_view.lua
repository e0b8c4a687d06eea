-- The metrics' views in the Prometheus text format (metrics.lua counts; sync.lua sums
-- the views of every edge replica in swarm mode):
--   /_deployer/metrics             cumulative, since the edge started
--   /_deployer/metrics?window=N    the last N seconds (N <= 120), from the 5-second slots
--   ...&top=K                      the live route's per-client figures (clients.lua)
-- The cumulative view also has the per-service families of service_metrics.lua.

local metrics = require("deployer.metrics")
local clients = require("deployer.clients")

local M = {}

local dict = ngx.shared.deployer_metrics
local BUCKETS, SLOT, FLUSH = metrics.BUCKETS, metrics.SLOT, metrics.FLUSH
local NBUCKETS = #BUCKETS
local MAX_WINDOW = 120

-- Until every worker has flushed what it counted before `since` (bounded: a worker that
-- is gone, or stuck, does not hold a reader for long).
local function wait_flushed(since)
    metrics.flush()
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
    return i > NBUCKETS and "+Inf" or tostring(BUCKETS[i])
end

-- The oldest 5-second slot of a window of `window` seconds.
local function first_slot_of(window)
    return math.floor(ngx.now() / SLOT) - math.ceil(window / SLOT) + 1
end

-- Sums the dict's keys into counts[series][class], hists.h and hists.u [series][bucket]
-- (the whole exchange, the upstream's header time) and sums.s and sums.us [series].
local HISTS = { h = "h", wh = "h", u = "u", wu = "u" }
local function collect(window)
    local counts, hists, sums = {}, { h = {}, u = {} }, { s = {}, us = {} }
    local first_slot = window and first_slot_of(window)
    for _, key in ipairs(dict:get_keys(0)) do
        local value = dict:get(key)
        if value then
            local kind, rest = key:match("^(%a+)|(.*)$")
            local windowed = kind == "wc" or kind == "wh" or kind == "wu"
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
                elseif HISTS[kind] then
                    local hist = hists[HISTS[kind]]
                    local series, b = rest:match("^(.*)|(%d+)$")
                    hist[series] = hist[series] or {}
                    hist[series][tonumber(b)] = (hist[series][tonumber(b)] or 0) + value
                elseif kind == "s" or kind == "us" then
                    sums[kind][rest] = value
                end
            end
        end
    end
    return counts, hists, sums
end

-- One histogram family: its TYPE line, then each series' cumulative buckets, count and sum.
local function histogram(out, name, hist, sums)
    out[#out + 1] = "# TYPE " .. name .. " histogram"
    for series, buckets in pairs(hist) do
        local running, tags = 0, labels(series)
        for i = 1, NBUCKETS + 1 do
            running = running + (buckets[i] or 0)
            out[#out + 1] = string.format('%s_bucket{%s,le="%s"} %d', name, tags, le(i), running)
        end
        out[#out + 1] = string.format("%s_count{%s} %d", name, tags, running)
        if sums[series] then
            out[#out + 1] = string.format("%s_sum{%s} %.3f", name, tags, sums[series])
        end
    end
end

function M.render()
    local window = tonumber(ngx.var.arg_window)
    if window ~= window then -- "nan" reads as a number that no clamp holds: not a window
        window = nil
    end
    if window then
        window = math.max(SLOT, math.min(MAX_WINDOW, window))
    end
    ngx.update_time()
    wait_flushed(ngx.now())
    local counts, hists, sums = collect(window)
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
    histogram(out, prefix .. "request_duration_seconds", hists.h, sums.s)
    histogram(out, prefix .. "upstream_header_seconds", hists.u, sums.us)
    local top = tonumber(ngx.var.arg_top)
    if top and top >= 1 then
        local first = window and first_slot_of(window)
        clients.render(out, prefix, labels, first, math.min(math.floor(top), 100), BUCKETS, metrics.TRACK)
    end
    if not window then
        require("deployer.service_metrics").render(out, BUCKETS)
        out[#out + 1] = "# TYPE deployer_dns_waits_total counter"
        out[#out + 1] = "deployer_dns_waits_total " .. require("deployer.dns").waits()
    end
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say(table.concat(out, "\n"))
end

return M
