-- Counters per route kind (live, preview, health), colour and release: requests by
-- status class and a latency histogram. Exact counts (every request is counted, nothing
-- is sampled), kept in a shared dict, five increments per request.
--
-- Two views, both in the Prometheus text format on the preview server:
--   /_deployer/metrics             cumulative, since the edge started
--   /_deployer/metrics?window=60   the last N seconds (N <= 120), from 5-second slots;
--                                  `deployer status` and the post-release watch read this

local M = {}

local dict = ngx.shared.deployer_metrics

-- Upper bounds of the latency buckets, in seconds. Thresholds worth checking exactly
-- (a p99 of 0.5 s, say) are bucket bounds, so "more than 1 % above 0.5 s" is an exact count.
M.BUCKETS = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30 }
local NBUCKETS = #M.BUCKETS
local SLOT = 5
local SLOT_TTL = 150
local MAX_WINDOW = 120

local function bucket(seconds)
    for i = 1, NBUCKETS do
        if seconds <= M.BUCKETS[i] then
            return i
        end
    end
    return NBUCKETS + 1
end

function M.log()
    local ctx = ngx.ctx
    if not ctx.route then
        return
    end
    local status = ngx.status
    local class = status >= 100 and status < 600 and (math.floor(status / 100) .. "xx") or "other"
    local seconds = tonumber(ngx.var.request_time) or 0
    local series = ctx.route .. "|" .. ctx.colour .. "|" .. ctx.release
    local b = bucket(seconds)
    local slot = math.floor(ngx.now() / SLOT)
    dict:incr("c|" .. series .. "|" .. class, 1, 0)
    dict:incr("h|" .. series .. "|" .. b, 1, 0)
    dict:incr("s|" .. series, seconds, 0)
    dict:incr("wc|" .. slot .. "|" .. series .. "|" .. class, 1, 0, SLOT_TTL)
    dict:incr("wh|" .. slot .. "|" .. series .. "|" .. b, 1, 0, SLOT_TTL)
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
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say(table.concat(out, "\n"))
end

return M
