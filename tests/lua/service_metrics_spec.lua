-- deployer.service_metrics: the public traffic's figures per service and configured route
-- prefix, from the router's choice to the cumulative view's lines (and none of them in the
-- windowed view the post-release watch reads).
local edge = require("fake_nginx")

local BLUE = table.concat({
    "release 1a2b3c4d",
    "service web web-blue-1a2b3c4d 3000 /healthz",
    "service api api-blue-1a2b3c4d 8080 /health",
    "service gone gone-blue-1a2b3c4d 8080 /health",
    "route / web",
    "route /api/ api",
    "route /api/v2/ api",
    "route /gone/ gone",
    'route /odd"q\\b/ web', -- a route state written by hand: a quote and a backslash
}, "\n")
local GREEN = "release 5e6f7a8b\nservice api api-green-5e6f7a8b 8080 /health\nroute /api/ api\n"

describe("the per-service metrics", function()
    local router, metrics, view, services

    before_each(function()
        edge.reset()
        router = edge.load("router")
        metrics = require("deployer.metrics")
        view = require("deployer.metrics_view")
        services = require("deployer.service_metrics")
        require("deployer.inflight").start()
        edge.names = {
            ["web-blue-1a2b3c4d"] = { "10.0.0.2" },
            ["api-blue-1a2b3c4d"] = { "10.0.0.4" },
            ["api-green-5e6f7a8b"] = { "10.0.1.4" },
        }
        edge.state({ live = "blue", blue = BLUE, green = GREEN })
        require("deployer.state").load()
    end)

    -- A request routed by the router (`kind` live or preview, from a client or `remote`).
    local function routed(uri, kind, remote)
        edge.request({ uri = uri, realip_remote_addr = remote or "203.0.113.9", binary_remote_addr = "\203\0\113\9" })
        router.route(kind or "live", false)
        return ngx.ctx
    end

    -- Its log phase: `r` status, seconds, header ($upstream_header_time), asked (the balancer
    -- ran: by default when the router found an address).
    local function finished(r)
        r = r or {}
        ngx.var.upstream_header_time = r.header
        if r.asked ~= false and ngx.ctx.peers then
            ngx.ctx.tries = 1
        end
        if r.status or not edge.exited then
            ngx.status = r.status or 200
        else
            ngx.status = edge.exited
        end
        edge.clock = edge.clock + (r.seconds or 0.02)
        metrics.log()
    end

    local function served(uri, r)
        routed(uri)
        finished(r)
    end

    local function scrape(args)
        return edge.lines(view.render, args)
    end

    local function has(lines, line)
        assert.is_true(lines[line] or false, "no line: " .. line)
    end

    local function count(lines, pattern)
        local n = 0
        for line in pairs(lines) do
            if line:find(pattern, 1, true) then
                n = n + 1
            end
        end
        return n
    end

    local API = 'service="api",prefix="/api/",colour="blue"'

    it("counts each request by service, configured prefix, colour and class", function()
        for _ = 1, 3 do
            served("/api/users?id=1")
        end
        served("/api/v2/items", { status = 404, header = "0.004" })
        served("/api/users/7", { status = 503, header = "0.010" })
        served("/index.html", { status = 304 })
        local lines = scrape()
        has(lines, "# TYPE deployer_service_requests_total counter")
        has(lines, string.format('deployer_service_requests_total{%s,class="2xx"} 3', API))
        has(lines, string.format('deployer_service_requests_total{%s,class="5xx"} 1', API))
        has(lines, 'deployer_service_requests_total{service="api",prefix="/api/v2/",colour="blue",class="4xx"} 1')
        has(lines, 'deployer_service_requests_total{service="web",prefix="/",colour="blue",class="3xx"} 1')
        assert.equals(4, count(lines, "deployer_service_requests_total{"))
        -- never the path itself
        assert.equals(0, count(lines, "/api/users"))
    end)

    describe("classes the answer", function()
        for _, case in ipairs({
            { "a limit's 429 as the edge's", { status = 429, asked = false }, "edge_4xx", 0 },
            { "max_in_flight's 503 as the edge's", { status = 503, asked = false }, "edge_5xx", 0 },
            { "a client that went away as aborted", { status = 499 }, "aborted", 0 },
            { "an upgrade as 1xx", { status = 101 }, "1xx", 0 },
            { "the app's own 502 as 5xx, not an upstream error", { status = 502, header = "0.003" }, "5xx", 0 },
            { "no connection (nginx's 502) as 5xx and an upstream error", { status = 502, header = "-" }, "5xx", 1 },
            { "a timeout (nginx's 504) as 5xx and an upstream error", { status = 504, header = "-" }, "5xx", 1 },
            { "a peer that failed, then one that timed out", { status = 504, header = "0.001, -" }, "5xx", 1 },
            { "a peer that failed, then one that answered", { status = 200, header = "-, 0.004" }, "2xx", 0 },
            { "the app's own 504", { status = 504, header = "1.500" }, "5xx", 0 },
        }) do
            it(case[1], function()
                served("/api/x", case[2])
                local lines = scrape()
                has(lines, string.format('deployer_service_requests_total{%s,class="%s"} 1', API, case[3]))
                has(lines, string.format("deployer_service_upstream_errors_total{%s} %d", API, case[4]))
            end)
        end

        it("the router's 502 for a service it finds no address of as 5xx and an upstream error", function()
            local ctx = routed("/gone/x")
            assert.equals(502, edge.exited)
            assert.is_nil(ctx.peers)
            finished()
            local lines = scrape()
            local gone = 'service="gone",prefix="/gone/",colour="blue"'
            has(lines, string.format('deployer_service_requests_total{%s,class="5xx"} 1', gone))
            has(lines, string.format("deployer_service_upstream_errors_total{%s} 1", gone))
        end)
    end)

    it("puts the whole exchange in a histogram per service and prefix", function()
        served("/api/a", { seconds = 0.05 })
        served("/api/b", { seconds = 0.1 })
        served("/api/c", { seconds = 0.7, status = 499 })
        local lines = scrape()
        local name, tags = "deployer_service_request_duration_seconds", 'service="api",prefix="/api/"'
        has(lines, "# TYPE " .. name .. " histogram")
        for _, bound in ipairs({ { "0.025", 0 }, { "0.05", 1 }, { "0.1", 2 }, { "0.5", 2 }, { "0.75", 3 }, { "+Inf", 3 } }) do
            has(lines, string.format('%s_bucket{%s,le="%s"} %d', name, tags, bound[1], bound[2]))
        end
        has(lines, string.format("%s_count{%s} 3", name, tags))
        has(lines, string.format("%s_sum{%s} 0.850", name, tags))
    end)

    describe("in flight", function()
        it("counts the requests routed and not finished, in every worker", function()
            routed("/api/a")
            local second = routed("/api/b")
            routed("/api/c")
            finished()
            metrics.flush()
            -- another worker's count, as its flush wrote it
            ngx.shared.deployer_services:set("f 101 api /api/ blue", 4, 5)
            has(scrape(), string.format("deployer_service_in_flight{%s} 6", API))
            ngx.ctx = second
            finished()
            metrics.flush()
            has(scrape(), string.format("deployer_service_in_flight{%s} 5", API))
        end)

        it("forgets a worker's count that no flush renewed for 5 s, and shows 0 for a series with none", function()
            served("/api/a")
            ngx.shared.deployer_services:set("f 101 api /api/ blue", 2, 5)
            metrics.flush()
            has(scrape(), string.format("deployer_service_in_flight{%s} 2", API))
            edge.clock = edge.clock + 5
            has(scrape(), string.format("deployer_service_in_flight{%s} 0", API))
        end)

        it("gives the request back when an internal redirect emptied ngx.ctx", function()
            routed("/api/a")
            ngx.ctx = {} -- error_page 500 = @deployer_no_room
            ngx.status = 503
            metrics.log()
            metrics.flush()
            has(scrape(), string.format("deployer_service_in_flight{%s} 0", API))
        end)

        it("is written by a worker that exits at each request it finishes", function()
            routed("/api/a")
            routed("/api/b")
            edge.worker.exiting = true
            finished()
            assert.equals(1, ngx.shared.deployer_services:get("f 100 api /api/ blue"))
        end)
    end)

    it("counts only public traffic of a configured route", function()
        served("/api/a") -- the one counted
        routed("/api/p", "preview")
        finished()
        routed("/api/probe", "live", "127.0.0.1") -- the deployer's own probe
        finished()
        edge.request({ h_colour = "blue", h_release = "", h_service = "api" })
        router.health()
        finished()
        local only_api = "release 1a2b3c4d\nservice api api-blue-1a2b3c4d 8080 /health\nroute /api/ api\n"
        edge.state({ live = "blue", blue = only_api, green = GREEN })
        require("deployer.state").load()
        routed("/nowhere") -- the router's 404
        finished()
        local lines = scrape()
        assert.equals(1, count(lines, "deployer_service_requests_total{"))
        has(lines, string.format('deployer_service_requests_total{%s,class="2xx"} 1', API))
        -- metrics.lua's series count every one of them, as before
        has(lines, 'deployer_requests_total{route="preview",colour="green",release="5e6f7a8b",class="2xx"} 1')
        has(lines, 'deployer_requests_total{route="probe",colour="blue",release="1a2b3c4d",class="2xx"} 1')
        has(lines, 'deployer_requests_total{route="live",colour="none",release="-",class="edge_404"} 1')
    end)

    it("names an external route by its prefix, colour none", function()
        edge.request({ deployer_prefix = "/blog/", upstream_addr = "192.0.2.10:443", upstream_header_time = "0.050" })
        router.external()
        ngx.status = 200
        metrics.log()
        edge.request({ deployer_prefix = "/blog/" })
        router.external()
        ngx.status = 502 -- nginx could not resolve it: no address
        metrics.log()
        local lines = scrape()
        local tags = 'service="external",prefix="/blog/",colour="none"'
        has(lines, string.format('deployer_service_requests_total{%s,class="2xx"} 1', tags))
        has(lines, string.format('deployer_service_requests_total{%s,class="5xx"} 1', tags))
        has(lines, string.format("deployer_service_upstream_errors_total{%s} 1", tags))
    end)

    it("escapes a prefix's backslash and double quote, and a newline, as the text format says", function()
        served('/odd"q\\b/x')
        local lines = scrape()
        has(lines, 'deployer_service_requests_total{service="web",prefix="/odd\\"q\\\\b/",colour="blue",class="2xx"} 1')
        has(lines, 'deployer_service_request_duration_seconds_count{service="web",prefix="/odd\\"q\\\\b/"} 1')
        assert.equals('a\\nb\\\\c\\"d', services.escape('a\nb\\c"d'))
        assert.equals("/plain/", services.escape("/plain/"))
    end)

    it("adds its families to the cumulative view only: the watch's windowed view is as before", function()
        served("/api/a")
        metrics.flush()
        local lines = scrape({ arg_window = "60" })
        assert.equals(0, count(lines, "deployer_service_"))
        has(lines, 'deployer_window_requests_total{route="live",colour="blue",release="1a2b3c4d",class="2xx"} 1')
        local cumulative, list = scrape()
        local families = {}
        for _, line in ipairs(list) do
            local family = line:match("^# TYPE (%S+) ")
            if family then
                families[#families + 1] = family
            end
        end
        assert.same({
            "deployer_requests_total",
            "deployer_request_duration_seconds",
            "deployer_upstream_header_seconds",
            "deployer_service_requests_total",
            "deployer_service_request_duration_seconds",
            "deployer_service_upstream_errors_total",
            "deployer_service_in_flight",
            "deployer_dns_waits_total",
        }, families)
        for _, family in ipairs(services.FAMILIES) do
            local typed = false
            for _, kind in ipairs({ "counter", "histogram", "gauge" }) do
                typed = typed or cumulative["# TYPE " .. family .. " " .. kind] or false
            end
            assert.is_true(typed, family)
        end
    end)

    it("costs a request no shared-dict write: the flush writes", function()
        served("/api/a")
        assert.same({}, ngx.shared.deployer_services:get_keys(0))
        metrics.flush()
        assert.equals(1, ngx.shared.deployer_services:get("r api /api/ blue 2xx"))
    end)
end)
