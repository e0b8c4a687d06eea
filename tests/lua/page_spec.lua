-- deployer.page: the status page's hour of samples (a bounded ring of points taken from
-- service_metrics.lua's counters), the series drawn from it, and the status it reads.
local edge = require("fake_nginx")

local BLUE = "release 1a2b3c4d\nversion v1\nservice api api-blue-1a2b3c4d 8080 /health\nroute /api/ api\n"
local GREEN = "release 5e6f7a8b\nversion v2\nservice api api-green-5e6f7a8b 8080 /health\nroute /api/ api\n"

describe("the status page", function()
    local page, counts

    before_each(function()
        edge.reset()
        page = edge.load("page")
        counts = ngx.shared.deployer_services
    end)

    -- service_metrics.lua's counters as its flush leaves them: `n` requests of class 2xx and
    -- `bad` of 5xx, on blue, all in the bucket `b` (an index of metrics.lua's bounds).
    local function served(service, n, bad, b, prefix)
        prefix = prefix or "/api/"
        counts:incr("r " .. service .. " " .. prefix .. " blue 2xx", n, 0)
        if bad > 0 then
            counts:incr("r " .. service .. " " .. prefix .. " blue 5xx", bad, 0)
            counts:incr("e " .. service .. " " .. prefix .. " blue", 1, 0)
        end
        counts:incr("h " .. service .. " " .. prefix .. " " .. b, n + bad, 0)
    end

    local function series()
        edge.request({})
        page.series_handler()
        return edge.body
    end

    it("samples only on worker 0, every INTERVAL seconds", function()
        edge.worker.id = 1
        page.start()
        assert.are.equal(0, #edge.timers)
        edge.worker.id = 0
        page.start()
        assert.are.equal(1, #edge.timers)
        assert.are.equal(page.INTERVAL, edge.timers[1].every)
    end)

    it("sums each service's prefixes and colours into one point, and reads it back", function()
        served("api", 90, 10, 6) -- 25-50 ms
        served("api", 5, 0, 6, "/api/v2/")
        served("web", 40, 0, 3, "/")
        counts:set("f 100 api /api/ blue", 3)
        counts:set("f 101 api /api/ green", 2)
        local text = page.encode(edge.clock, page.figures())
        local point = page.decode(text)
        assert.are.equal(edge.clock, point.t)
        assert.are.same({ 105, 10, 1, 5 }, { point.s.api.n, point.s.api.e, point.s.api.u, point.s.api.fl })
        assert.are.equal(21, #point.s.api.h)
        assert.are.equal(105, point.s.api.h[6])
        assert.are.equal(40, point.s.web.n)
    end)

    it("draws rate, 5xx share, p99 and in flight from the difference of two points", function()
        page.start()
        edge.run_timers() -- the first point: no traffic yet
        served("api", 99, 1, 5) -- 100 requests in 10 s, 1 % 5xx, all in bucket 5 (10-25 ms)
        edge.clock = edge.clock + 10
        edge.run_timers()
        local body = series()
        assert.truthy(body:find('"interval":10,"points":2,', 1, true), body)
        local row = body:match('"api":%[(%b[])%]')
        assert.truthy(row, body)
        local t, rate, share, p99, fl, errs = row:match("^%[([%d.]+),([%d.]+),([%d.]+),([%d.]+),(%d+),(%d+)%]$")
        assert.are.equal(edge.clock, tonumber(t))
        assert.are.equal(10, tonumber(rate))
        assert.are.equal(0.01, tonumber(share))
        assert.is_true(tonumber(p99) > 10 and tonumber(p99) <= 25, p99)
        assert.are.same({ 0, 1 }, { tonumber(fl), tonumber(errs) })
    end)

    it("leaves the figures of an interval without requests empty, and starts anew after a gap", function()
        served("api", 1, 0, 1)
        page.sample()
        edge.clock = edge.clock + 10
        page.sample() -- no traffic: the rate is 0, the share and p99 unknown
        assert.truthy(series():find("[" .. string.format("%.3f", edge.clock) .. ",0,null,null,0,0]", 1, true))
        edge.clock = edge.clock + 600 -- the edge's timer stalled (or the edge restarted)
        page.sample()
        local rows = select(2, series():gsub("%[%d+%.%d+,", ""))
        assert.are.equal(1, rows) -- no row across the gap
    end)

    it("keeps one hour of points, whatever the traffic", function()
        for i = 1, page.POINTS + 25 do
            served("svc" .. (i % 3), 1, 0, 1)
            page.sample()
            edge.clock = edge.clock + 10
        end
        local keys = ngx.shared.deployer_page:get_keys(0)
        assert.are.equal(page.POINTS + 1, #keys) -- the points, and "seq"
        assert.truthy(series():find('"points":' .. page.POINTS .. ",", 1, true))
    end)

    it("interpolates the p99 within its bucket, as histogram_quantile does", function()
        local h = {}
        for i = 1, 21 do
            h[i] = 0
        end
        h[8], h[12] = 98, 2 -- 98 up to 100 ms, 2 in 300-500 ms
        assert.are.equal(400, math.floor(page.p99(h, 100) + 0.5)) -- rank 99: half way in (300, 500]
        h[12], h[21] = 0, 2
        assert.are.equal(30000, page.p99(h, 100)) -- in +Inf: the highest finite bound
    end)

    it("gives the colours with their versions, the history and the last dumps, as JSON strings", function()
        edge.state({ live = "green", blue = BLUE, green = GREEN })
        require("deployer.state").load()
        edge.files["/var/lib/deployer/history.jsonl"] = '{"action":"release","version":"v2"}\n'
            .. '{"action":"switch","reason":"a \\"quote\\"\ttab"}\n{"torn'
        edge.files["/var/lib/deployer/dumps.jsonl"] = '{"name":"app-1","state":"verified"}\n'
        edge.request({})
        page.status_handler()
        local body = edge.body
        assert.truthy(body:find('"live":"green","standby":"blue","maintenance":false', 1, true), body)
        assert.truthy(body:find('"blue":{"release":"1a2b3c4d","version":"v1"}', 1, true), body)
        assert.truthy(body:find('"green":{"release":"5e6f7a8b","version":"v2"}', 1, true), body)
        assert.truthy(body:find('"history":["{\\"action\\":\\"release\\",\\"version\\":\\"v2\\"}",', 1, true), body)
        assert.truthy(body:find('\\"reason\\":\\"a \\\\\\"quote\\\\\\"\\ttab\\"}","{\\"torn"]', 1, true), body)
        assert.truthy(body:find('"dumps":["{\\"name\\":\\"app-1\\",\\"state\\":\\"verified\\"}"]', 1, true), body)
        assert.are.equal("application/json", ngx.header["Content-Type"])
    end)

    it("answers with empty lists before any release", function()
        edge.request({})
        page.status_handler()
        assert.truthy(edge.body:find('"live":null,"standby":null,"maintenance":false,"colours":{},"history":[],"dumps":[]', 1, true), edge.body)
        assert.truthy(series():find('"points":0,', 1, true))
    end)
    -- The page's weight (issue 38: a first load under 200 KB): a full hour of 2, 4 and the
    -- config's 16 services, each with traffic in every interval. Prints the size and the CPU
    -- time of one series.json (here, under LuaJIT with the fake shared dict).
    it("serves a full hour in a bounded answer", function()
        for _, n in ipairs({ 2, 4, 16 }) do
            edge.reset()
            page = edge.load("page")
            counts = ngx.shared.deployer_services
            page.start()
            for i = 1, 361 do
                for s = 1, n do
                    served(string.format("service-%02d", s), 1000 + i, i % 7, i % 20 + 1)
                end
                edge.clock = edge.clock + 10
                edge.run_timers()
            end
            local started = os.clock()
            local body = series()
            assert.truthy(body:find('"points":360,', 1, true))
            print(string.format("a full hour of %d services: series.json %d bytes, %.1f ms of CPU", n, #body,
                (os.clock() - started) * 1000))
            assert.is_true(#body < 16000 * n, #body) -- about 15 KB a service, before gzip
        end
    end)
end)
