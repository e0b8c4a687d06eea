-- The status page's data (docs/observability.md#the-status-page), on the admin port only:
--   /_deployer/page/series.json  the last hour per service: request rate, 5xx share, p99 and
--                                requests in flight, one point every INTERVAL seconds
--   /_deployer/page/status.json  the live colour and the standby with their releases and
--                                versions, the history's last lines (releases, switches,
--                                auto-rollbacks: the page's marks) and the last dumps the CLI noted
-- The page itself (page/index.html, page.js) is static, served from the image.
--
-- The history: worker 0 samples service_metrics.lua's cumulative counters (on a swarm's
-- control, summed over every public replica: page_sum.lua) every INTERVAL seconds into a
-- ring of POINTS strings in the shared dict deployer_page (keys "p<slot>" and "seq": bounded
-- whatever the traffic; a service name comes from the route state, never from a request).
-- The series are the differences of consecutive points. The ring lives in memory: a new or
-- restarted edge starts an empty hour.

local services = require("deployer.service_metrics")
local metrics = require("deployer.metrics")

local M = {}

local INTERVAL = 10 -- seconds between two points
local POINTS = 360 -- one hour
local HOME = "/var/lib/deployer/"
local HISTORY, DUMPS = HOME .. "history.jsonl", HOME .. "dumps.jsonl"
local TAIL_BYTES, TAIL_LINES = 65536, 50
M.INTERVAL, M.POINTS = INTERVAL, POINTS

local dict = ngx.shared.deployer_page
local BUCKETS = metrics.BUCKETS
local NB = #BUCKETS + 1

-- One point's text: "<time>;<service> <requests> <5xx> <upstream errors> <in flight> <b1>,...,<b21>;..."
-- (counts summed over the service's prefixes and colours; the buckets not cumulative).
function M.encode(t, figures)
    local names = {}
    for name in pairs(figures) do
        names[#names + 1] = name
    end
    table.sort(names)
    local parts = { string.format("%.3f", t) }
    for _, name in ipairs(names) do
        local f = figures[name]
        parts[#parts + 1] = string.format("%s %d %d %d %d %s", name, f.n, f.e, f.u, f.fl, table.concat(f.h, ","))
    end
    return table.concat(parts, ";")
end

function M.decode(text)
    local t, rest = text:match("^([%d.]+)(.*)$")
    if not t then
        return nil
    end
    local point = { t = tonumber(t), s = {} }
    for part in rest:gmatch(";([^;]+)") do
        local name, n, e, u, fl, h = part:match("^(%S+) (%d+) (%d+) (%d+) (%-?%d+) ([%d,]+)$")
        if name then
            local hist = {}
            for v in h:gmatch("%d+") do
                hist[#hist + 1] = tonumber(v)
            end
            point.s[name] = { n = tonumber(n), e = tonumber(e), u = tonumber(u), fl = tonumber(fl), h = hist }
        end
    end
    return point
end

-- Each service's figures now, from service_metrics.lua's counters.
function M.figures()
    local requests, errors, hist, _, flight = services.collect()
    local out = {}
    local function of(name)
        local f = out[name]
        if not f then
            f = { n = 0, e = 0, u = 0, fl = 0, h = {} }
            for i = 1, NB do
                f.h[i] = 0
            end
            out[name] = f
        end
        return f
    end
    for series, classes in pairs(requests) do
        local f = of(series:match("^(%S+)"))
        for class, n in pairs(classes) do
            f.n = f.n + n
            if class == "5xx" or class == "edge_5xx" then
                f.e = f.e + n
            end
        end
    end
    for field, counted in pairs({ u = errors, fl = flight }) do -- upstream errors, in flight
        for series, n in pairs(counted) do
            local f = of(series:match("^(%S+)"))
            f[field] = f[field] + n
        end
    end
    for series, buckets in pairs(hist) do
        local f = of(series:match("^(%S+)"))
        for i = 1, NB do
            f.h[i] = f.h[i] + (buckets[i] or 0)
        end
    end
    return out
end

-- One point into the ring (the oldest goes). On a swarm's control edge, the running sum of
-- its own and every public replica's figures (page_sum.lua).
function M.sample()
    local control = require("deployer.sync").role == "control"
    local figures = control and require("deployer.page_sum").gather() or M.figures()
    ngx.update_time()
    local seq = dict:incr("seq", 1, 0)
    local ok, err = dict:set("p" .. (seq % POINTS), M.encode(ngx.now(), figures))
    if not ok then
        ngx.log(ngx.WARN, "page: cannot keep a point: ", err)
    end
end

function M.start()
    if ngx.worker.id() ~= 0 then
        return
    end
    local ok, err = ngx.timer.every(INTERVAL, function(premature)
        if not premature then
            M.sample()
        end
    end)
    if not ok then
        ngx.log(ngx.ERR, "page: cannot start the sampler: ", err)
    end
end

-- The ring's points, oldest first.
local function points()
    local list = {}
    for slot = 0, POINTS - 1 do
        local text = dict:get("p" .. slot)
        local point = text and M.decode(text)
        if point then
            list[#list + 1] = point
        end
    end
    table.sort(list, function(a, b)
        return a.t < b.t
    end)
    return list
end

-- The 99th percentile (ms) of a histogram's counts, interpolated in its bucket as PromQL's
-- histogram_quantile does; the highest finite bound when it falls in +Inf.
function M.p99(h, total)
    local rank, running = 0.99 * total, 0
    for i = 1, NB do
        local before = running
        running = running + h[i]
        if running >= rank and h[i] > 0 then
            if i == NB then
                return BUCKETS[#BUCKETS] * 1000
            end
            local low = i == 1 and 0 or BUCKETS[i - 1]
            return (low + (BUCKETS[i] - low) * (rank - before) / h[i]) * 1000
        end
    end
    return nil
end

local ZERO = { n = 0, e = 0, u = 0, fl = 0, h = {} }

local function num(v, fmt)
    return v == nil and "null" or string.format(fmt or "%.4g", v)
end

-- Per service, one row per pair of consecutive points: [time, req/s, 5xx share, p99 ms,
-- in flight, upstream errors]; a gap (a restart, a stalled timer) starts anew.
function M.series(list)
    local rows = {}
    for i = 2, #list do
        local a, b = list[i - 1], list[i]
        local dt = b.t - a.t
        if dt > 0 and dt <= 2.5 * INTERVAL then
            for name, now in pairs(b.s) do
                local was = a.s[name] or ZERO -- a service has no counters before its first request
                if now.n >= was.n then
                    local n, h, hn = now.n - was.n, {}, 0
                    for k = 1, NB do
                        h[k] = (now.h[k] or 0) - (was.h[k] or 0)
                        hn = hn + h[k]
                    end
                    rows[name] = rows[name] or {}
                    local r = rows[name]
                    r[#r + 1] = string.format(
                        "[%.3f,%s,%s,%s,%d,%d]",
                        b.t,
                        num(n / dt),
                        n > 0 and num((now.e - was.e) / n) or "null",
                        hn > 0 and num(M.p99(h, hn)) or "null",
                        now.fl,
                        now.u - was.u
                    )
                end
            end
        end
    end
    return rows
end

-- A JSON string.
local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function str(s)
    return '"'
        .. s:gsub('[%c"\\]', function(c)
            return ESC[c] or string.format("\\u%04x", c:byte())
        end)
        .. '"'
end
M.str = str

local function reply(body)
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say(body)
end

function M.series_handler()
    ngx.update_time()
    local list = points()
    local rows, parts = M.series(list), {}
    local names = {}
    for name in pairs(rows) do
        names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
        parts[#parts + 1] = str(name) .. ":[" .. table.concat(rows[name], ",") .. "]"
    end
    reply(
        string.format(
            '{"now":%.3f,"interval":%d,"points":%d,"columns":["time","rate","error_rate","p99_ms","in_flight","upstream_errors"],"services":{%s}}',
            ngx.now(),
            INTERVAL,
            #list,
            table.concat(parts, ",")
        )
    )
end

-- The last lines of a JSON-lines file that the deployer writes in the edge's volume, each
-- as a JSON string (the page parses them, so a torn line cannot break this answer).
function M.tail(path)
    local fh = io.open(path, "rb")
    if not fh then
        return {}
    end
    local size = fh.seek and fh:seek("end") or 0
    local cut = size > TAIL_BYTES
    if fh.seek then
        fh:seek("set", cut and size - TAIL_BYTES or 0)
    end
    local text = fh:read("*a") or ""
    fh:close()
    local lines = {}
    for line in text:gmatch("[^\n]+") do
        lines[#lines + 1] = line
    end
    if cut then
        table.remove(lines, 1) -- the first may be a line's end
    end
    local out = {}
    for i = math.max(1, #lines - TAIL_LINES + 1), #lines do
        out[#out + 1] = str(lines[i])
    end
    return out
end

function M.status_handler()
    local state = require("deployer.state")
    local st, colours = state.current(), {}
    for _, colour in ipairs(state.COLOURS) do
        local rec = st.colours[colour]
        if rec then
            colours[#colours + 1] =
                string.format('%s:{"release":%s,"version":%s}', str(colour), str(rec.release), str(rec.version or ""))
        end
    end
    ngx.update_time()
    reply(
        string.format(
            '{"now":%.3f,"live":%s,"standby":%s,"maintenance":%s,"colours":{%s},"history":[%s],"dumps":[%s]}',
            ngx.now(),
            st.live and str(st.live) or "null",
            st.preview and str(st.preview) or "null",
            st.maintenance and "true" or "false",
            table.concat(colours, ","),
            table.concat(M.tail(HISTORY), ","),
            table.concat(M.tail(DUMPS), ",")
        )
    )
end

return M
