-- The status page's hour on a swarm (docs/observability.md#the-status-page): the users'
-- requests reach the public edge replicas, so the control edge's sampler (page.lua, worker 0,
-- every INTERVAL seconds) asks each of them for its figures (page.lua's point text, at
-- /_deployer/page/figures on the internal port, with the sync token: sync.lua) and keeps a
-- running sum, which is the point it stores. series.json and the page read it unchanged.
--
-- Each source (this edge, "self", and each replica's address from Docker's DNS) has a
-- baseline: its last answer. For each source that answered, what it counted since its last
-- answer is added to the running totals, so that
--   - a replica seen for the first time only sets its baseline (it adds 0),
--   - a replica that missed a sample adds its whole difference at its next answer,
--   - a replica that restarted (a counter went back, or a service it had is gone) adds what
--     it has counted since it started,
-- and no series goes negative or jumps. In flight is a gauge: the sum over the sources that
-- answered this time. A source not heard from for FORGET seconds is forgotten (a task swarm
-- replaced has a new address), so the state stays as small as the set of replicas.
-- The state lives in the shared dict deployer_page (key "sum"), so a reload keeps it.

local page = require("deployer.page")
local sync = require("deployer.sync")
local metrics = require("deployer.metrics")

local M = {}

M.PATH = "/_deployer/page/figures"
M.FORGET = 5 * page.INTERVAL
local KEY = "sum"
local NB = #metrics.BUCKETS + 1
local COUNTERS = { "n", "e", "u" }

local function zero()
    local f = { n = 0, e = 0, u = 0, fl = 0, h = {} }
    for i = 1, NB do
        f.h[i] = 0
    end
    return f
end
local ZERO = zero()

-- Did a source's counters go back since `was` (its edge restarted)?
local function restarted(was, now)
    for name, w in pairs(was) do
        local f = now[name]
        if not f then
            return true -- an edge keeps a service's counters until it restarts
        end
        for _, k in ipairs(COUNTERS) do
            if f[k] < w[k] then
                return true
            end
        end
        for i = 1, NB do
            if (f.h[i] or 0) < (w.h[i] or 0) then
                return true
            end
        end
    end
    return false
end

-- One sample: `answers` maps each source that answered at time `t` to its figures (per
-- service, as page.figures() gives them). `state` is { total = figures per service,
-- sources = { [id] = { t = its last answer's time, f = its figures } } }, updated in place.
-- Returns the running totals, with in flight summed over the sources that answered.
function M.step(state, answers, t)
    local total = state.total
    for _, sum in pairs(total) do
        sum.fl = 0
    end
    for id, now in pairs(answers) do
        local source = state.sources[id]
        local base = source and (restarted(source.f, now) and {} or source.f) -- nil: first sight
        for name, f in pairs(now) do
            local sum = total[name] or zero()
            total[name] = sum
            if base then
                local w = base[name] or ZERO
                for _, k in ipairs(COUNTERS) do
                    sum[k] = sum[k] + f[k] - w[k]
                end
                for i = 1, NB do
                    sum.h[i] = sum.h[i] + (f.h[i] or 0) - (w.h[i] or 0)
                end
            end
            sum.fl = sum.fl + f.fl
        end
        state.sources[id] = { t = t, f = now }
    end
    for id, source in pairs(state.sources) do
        if t - source.t > M.FORGET then
            state.sources[id] = nil
        end
    end
    return total
end

-- The state as text, one line per entry: "total <point>", then "<source> <point>".
function M.dump(state)
    local lines = { "total " .. page.encode(0, state.total) }
    for id, source in pairs(state.sources) do
        lines[#lines + 1] = id .. " " .. page.encode(source.t, source.f)
    end
    return table.concat(lines, "\n")
end

function M.load(text)
    local state = { total = {}, sources = {} }
    for line in (text or ""):gmatch("[^\n]+") do
        local id, rest = line:match("^(%S+) (.*)$")
        local point = rest and page.decode(rest)
        if id == "total" and point then
            state.total = point.s
        elseif point then
            state.sources[id] = { t = point.t, f = point.s }
        end
    end
    return state
end

-- The control's figures for the ring: this edge's and every replica's, summed as above.
function M.gather()
    local answers = { self = page.figures() }
    for _, answer in ipairs(sync.ask(M.PATH)) do
        local point = page.decode(answer.body:match("^%s*(.-)%s*$"))
        if point then
            answers[answer.ip] = point.s
        end
    end
    ngx.update_time()
    local dict = ngx.shared.deployer_page
    local state = M.load(dict:get(KEY))
    local total = M.step(state, answers, ngx.now())
    local ok, err = dict:set(KEY, M.dump(state))
    if not ok then
        ngx.log(ngx.WARN, "page: cannot keep the replicas' baselines: ", err)
    end
    return total
end

-- /_deployer/page/figures: this edge's own figures now, as one point's text; from another
-- edge only with the sync token (sync.allowed).
function M.handler()
    if not sync.allowed() then
        return ngx.exit(403)
    end
    ngx.update_time()
    ngx.header["Content-Type"] = "text/plain"
    ngx.header["Cache-Control"] = "no-store"
    ngx.print(page.encode(ngx.now(), page.figures()))
end

return M
