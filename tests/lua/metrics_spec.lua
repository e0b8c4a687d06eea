-- deployer.metrics and deployer.metrics_view: what each request adds to the counters and the
-- histograms, and the Prometheus text that the post-release watch and `deployer status` read.
local edge = require("fake_nginx")

local TAGS = 'route="live",colour="blue",release="1a2b3c4d"'

describe("the metrics", function()
    local metrics, view

    before_each(function()
        edge.reset()
        metrics = edge.load("metrics")
        view = require("deployer.metrics_view")
    end)

    -- One request's log phase. `r`: status, seconds (the whole exchange), asked (the balancer
    -- ran; default true), header ($upstream_header_time), route, colour, release, addr.
    local function served(r)
        edge.request({
            upstream_header_time = r.header,
            upstream_addr = r.upstream_addr,
            binary_remote_addr = r.addr or "\192\0\2\1",
        })
        local ctx = ngx.ctx
        ctx.route, ctx.colour, ctx.release = r.route or "live", r.colour or "blue", r.release or "1a2b3c4d"
        if r.asked ~= false then
            ctx.tries = 1
        end
        ctx.inflight = r.inflight
        ngx.status = r.status or 200
        edge.clock = edge.clock + (r.seconds or 0.02)
        metrics.log()
    end

    -- The view's lines as a set, and in order; `args`: arg_window, arg_top.
    local function scrape(args)
        return edge.lines(view.render, args)
    end

    local function has(lines, line)
        assert.is_true(lines[line] or false, "no line: " .. line)
    end

    local function lacks(lines, pattern)
        for line in pairs(lines) do
            assert.is_nil(line:find(pattern, 1, true), "unexpected line: " .. line)
        end
    end

    describe("counts each request by the class of its answer", function()
        for _, case in ipairs({
            { "an app's 2xx", { status = 200 }, "2xx" },
            { "an app's 3xx", { status = 304 }, "3xx" },
            { "an app's 4xx", { status = 404 }, "4xx" },
            { "an app's 5xx", { status = 503 }, "5xx" },
            { "an upgrade", { status = 101 }, "1xx" },
            { "a client that went away", { status = 499 }, "aborted" },
            { "a limit's answer", { status = 429, asked = false }, "edge_429" },
            { "max_in_flight's or maintenance's 503", { status = 503, asked = false }, "edge_503" },
            { "the router's 404", { status = 404, asked = false }, "edge_404" },
            { "the router's 502 for a service that is gone", { status = 502, asked = false }, "5xx" },
            { "an external upstream's answer", { status = 201, asked = false, route = "external", upstream_addr = "10.1.1.1:80" }, "2xx" },
        }) do
            it(case[1] .. " -> " .. case[3], function()
                served(case[2])
                local route = case[2].route or "live"
                local tags = string.format('route="%s",colour="blue",release="1a2b3c4d"', route)
                has(scrape(), string.format('deployer_requests_total{%s,class="%s"} 1', tags, case[3]))
            end)
        end
    end)

    it("counts nothing for a request the router never named", function()
        edge.request({})
        ngx.status = 200
        metrics.log()
        local _, list = scrape()
        assert.equals("# TYPE deployer_requests_total counter", list[1])
        assert.equals("# TYPE deployer_request_duration_seconds histogram", list[2])
    end)

    it("puts the whole exchange in cumulative buckets, a bound's exact value in its own bucket", function()
        served({ seconds = 0 })
        served({ seconds = 0.1 })
        served({ seconds = 0.1006 }) -- 0.101 s, in whole milliseconds
        served({ seconds = 31 })
        local lines = scrape()
        local name = "deployer_request_duration_seconds"
        for _, bound in ipairs({ { "0.001", 1 }, { "0.075", 1 }, { "0.1", 2 }, { "0.15", 3 }, { "30", 3 }, { "+Inf", 4 } }) do
            has(lines, string.format('%s_bucket{%s,le="%s"} %d', name, TAGS, bound[1], bound[2]))
        end
        has(lines, string.format("%s_count{%s} 4", name, TAGS))
        has(lines, string.format("%s_sum{%s} 31.201", name, TAGS))
    end)

    describe("takes the upstream's header time", function()
        for _, case in ipairs({
            { "as the exchange when it took at most 100 ms", { seconds = 0.1, header = "0.300" }, "0.1", 1 },
            { "from $upstream_header_time after that", { seconds = 2, header = "0.250" }, "0.3", 1 },
            { "as the sum over the peers tried", { seconds = 2, header = "0.002, 0.150" }, "0.15", 0 },
            { "as the exchange when no peer sent a header", { seconds = 2, header = "-" }, "1.5", 0 },
        }) do
            it(case[1], function()
                served(case[2])
                local lines = scrape()
                has(lines, string.format('deployer_upstream_header_seconds_bucket{%s,le="%s"} %d', TAGS, case[3], case[4]))
            end)
        end

        it("only for requests the app answered", function()
            served({ status = 429, asked = false })
            served({ status = 499 })
            lacks(scrape(), "deployer_upstream_header_seconds_bucket")
        end)
    end)

    it("gives the slot that router.lua took back", function()
        local inflight = require("deployer.inflight")
        inflight.start()
        local slot = inflight.take("blue|api", 1)
        served({ inflight = slot })
        assert.equals(0, ngx.shared.deployer_inflight:get(slot))
    end)

    it("gives the slot back when an internal redirect emptied the request's context", function()
        local inflight = require("deployer.inflight")
        inflight.start()
        local slot = inflight.take("blue|api", 1)
        -- nginx's own 500 went to @deployer_no_room: ngx.ctx is new, the variables are kept
        edge.request({ deployer_inflight = slot, deployer_route = "live", deployer_service = "api" })
        ngx.status = 503
        metrics.log()
        assert.equals(0, ngx.shared.deployer_inflight:get(slot))
        assert.equals("blue|api|100", inflight.take("blue|api", 1))
    end)

    it("counts the live route's slow and 5xx requests per client address, not the preview's", function()
        served({ status = 500, addr = "\192\0\2\1" })
        served({ seconds = 0.5, header = "0.4", addr = "\192\0\2\2" })
        served({ status = 500, route = "preview", addr = "\192\0\2\3" })
        served({ status = 200, seconds = 0.5, header = "0.05", addr = "\192\0\2\4" }) -- fast app, slow client
        local lines = scrape({ arg_top = "5" })
        has(lines, string.format("deployer_client_addresses{%s} 2", TAGS))
        has(lines, string.format('deployer_top_client_5xx{%s,top="5"} 1', TAGS))
        has(lines, string.format('deployer_top_client_slow{%s,top="5",above="0.1"} 1', TAGS))
        lacks(lines, 'client_5xx{route="preview"')
    end)

    it("flushes at once in a worker that is exiting", function()
        edge.worker.exiting = true
        served({})
        assert.equals(1, ngx.shared.deployer_metrics:get("c|live|blue|1a2b3c4d|2xx"))
    end)

    describe("the view", function()
        it("is the cumulative one with the DNS waits when no window is asked", function()
            served({})
            local lines, list = scrape()
            assert.equals("# TYPE deployer_requests_total counter", list[1])
            has(lines, "# TYPE deployer_request_duration_seconds histogram")
            has(lines, "# TYPE deployer_upstream_header_seconds histogram")
            has(lines, "# TYPE deployer_dns_waits_total counter")
            has(lines, "deployer_dns_waits_total 0")
            assert.equals("text/plain; version=0.0.4", ngx.header["Content-Type"])
            assert.equals("no-store", ngx.header["Cache-Control"])
        end)

        it("counts only the last N seconds' slots in a window", function()
            served({ status = 500 })
            metrics.flush() -- the flush timer: a request counts in the slot of the flush after it
            edge.clock = edge.clock + 70
            served({})
            local lines, list = scrape({ arg_window = "60" })
            assert.equals("# window 60 seconds, in 5-second slots", list[1])
            has(lines, string.format('deployer_window_requests_total{%s,class="2xx"} 1', TAGS))
            lacks(lines, 'class="5xx"')
            lacks(lines, "dns_waits")
            has(scrape(), string.format('deployer_requests_total{%s,class="5xx"} 1', TAGS))
        end)

        describe("holds a window between 5 and 120 seconds", function()
            for _, case in ipairs({ { "0", 5 }, { "3", 5 }, { "-10", 5 }, { "5", 5 }, { "120", 120 }, { "121", 120 }, { "1e9", 120 }, { "inf", 120 }, { "-inf", 5 } }) do
                it("window=" .. case[1] .. " -> " .. case[2], function()
                    local _, list = scrape({ arg_window = case[1] })
                    assert.equals(string.format("# window %d seconds, in 5-second slots", case[2]), list[1])
                end)
            end
        end)

        it("is the cumulative view for a window that is not a number", function()
            served({})
            for _, window in ipairs({ "a minute", "nan", "-nan", "0x" }) do
                local lines, list = scrape({ arg_window = window })
                has(lines, string.format('deployer_requests_total{%s,class="2xx"} 1', TAGS))
                assert.is_nil(list[1]:match("^# window"), window)
            end
        end)

        it("adds the per-client families for top=K only, K at most 100", function()
            served({ status = 500 })
            lacks(scrape(), "client")
            lacks(scrape({ arg_top = "0" }), "client")
            has(scrape({ arg_top = "2.7" }), string.format('deployer_top_client_5xx{%s,top="2"} 1', TAGS))
            has(scrape({ arg_top = "1000" }), string.format('deployer_top_client_5xx{%s,top="100"} 1', TAGS))
            has(scrape({ arg_top = "3", arg_window = "60" }), string.format('deployer_window_top_client_5xx{%s,top="3"} 1', TAGS))
        end)

        it("waits for every worker's flush since the read began, at most about a second", function()
            edge.worker.count = 2
            served({})
            local before = edge.clock
            ngx.shared.deployer_metrics:set("flushed|1", before + 0.1)
            scrape()
            assert.equals(before, edge.clock)
            ngx.shared.deployer_metrics:set("flushed|1", before - 1)
            scrape()
            local waited = edge.clock - before
            assert.is_true(waited > 0.9 and waited < 1.1, "waited " .. waited)
        end)
    end)

    describe("forgetting the releases no colour holds", function()
        before_each(function()
            edge.state({ live = "blue", blue = "release 1a2b3c4d\n" })
            require("deployer.state").load()
            served({ status = 500 })
            served({ status = 500, colour = "green", release = "5e6f7a8b" })
            served({ status = 429, asked = false, colour = "none", release = "-" })
            metrics.flush()
        end)

        local function releases()
            local seen = {}
            for line in pairs(scrape({ arg_top = "1" })) do
                local release = line:match('release="([^"]*)"')
                if release then
                    seen[release] = true
                end
            end
            return seen
        end

        it("keeps a gone release for the grace period, then forgets its series and client counts", function()
            assert.same({}, metrics.forget(600))
            edge.clock = edge.clock + 599
            assert.same({}, metrics.forget(600))
            assert.is_true(releases()["5e6f7a8b"])
            edge.clock = edge.clock + 1
            assert.same({ "5e6f7a8b" }, metrics.forget(600))
            assert.same({ ["1a2b3c4d"] = true, ["-"] = true }, releases())
            for _, key in ipairs(ngx.shared.deployer_clients:get_keys(0)) do
                assert.is_nil(key:find("5e6f7a8b", 1, true))
            end
            assert.is_nil(ngx.shared.deployer_metrics:get("g|5e6f7a8b"))
        end)

        it("forgets at once with no grace (deployer prune), and says which", function()
            edge.request({ arg_grace = nil })
            metrics.forget_handler()
            assert.equals("forgot 5e6f7a8b\n", edge.body)
            edge.request({ arg_grace = "-5" })
            metrics.forget_handler()
            assert.equals("forgot \n", edge.body)
        end)

        it("keeps a release that a colour holds again", function()
            metrics.forget(600)
            edge.state({ live = "blue", blue = "release 1a2b3c4d\n", green = "release 5e6f7a8b\n" })
            require("deployer.state").load()
            edge.clock = edge.clock + 601
            assert.same({}, metrics.forget(600))
            assert.is_true(releases()["5e6f7a8b"])
            assert.is_nil(ngx.shared.deployer_metrics:get("g|5e6f7a8b"))
        end)
    end)

    it("flushes every 0.25 s in every worker, and forgets from worker 0 only", function()
        edge.worker.id = 1
        metrics.start()
        assert.same({ 0.25 }, { edge.timers[1].every, edge.timers[2] })
        edge.timers = {}
        edge.worker.id = 0
        metrics.start()
        assert.same({ 0.25, 60 }, { edge.timers[1].every, edge.timers[2].every })
    end)
end)
