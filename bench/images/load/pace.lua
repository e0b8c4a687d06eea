-- wrk script of the benchmarks: optional pacing, optional per-status counts, and one
-- JSON summary line ("WRK_JSON {...}") so that the harness never parses wrk's text.
--
--   WRK_DELAY_MS   pause of each connection before each request (0: as fast as it can)
--   WRK_STATUSES   "1": count responses per status and the non-2xx per second (costs a
--                  header parse per response, so only the paced lanes use it)

local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0") or 0
local count_statuses = os.getenv("WRK_STATUSES") == "1"
local threads = {}

function setup(thread)
    threads[#threads + 1] = thread
end

function init(args)
    statuses = {}
    failed_at = {}
end

if delay_ms > 0 then
    function delay()
        return delay_ms
    end
end

if count_statuses then
    function response(status, headers, body)
        statuses[status] = (statuses[status] or 0) + 1
        if status < 200 or status > 299 then
            local t = os.time()
            failed_at[t] = (failed_at[t] or 0) + 1
        end
    end
end

local function json_table(t)
    local parts = {}
    for k, v in pairs(t) do
        parts[#parts + 1] = string.format('"%s":%d', tostring(k), v)
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
    local merged, when = {}, {}
    for _, thread in ipairs(threads) do
        for k, v in pairs(thread:get("statuses") or {}) do
            merged[k] = (merged[k] or 0) + v
        end
        for k, v in pairs(thread:get("failed_at") or {}) do
            when[k] = (when[k] or 0) + v
        end
    end
    local e = summary.errors
    io.write(string.format(
        'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
            .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},'
            .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},'
            .. '"statuses":%s,"non2xx_at":%s}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.timeout, e.status,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
        json_table(merged), json_table(when)
    ))
end
