-- deployer.page_sum: on a swarm's control edge, the status page's hour is the running sum of
-- every public replica's figures, kept per source so that a replica's restart, first sight or
-- missed sample never makes a series go negative or jump.
local edge = require("fake_nginx")

local TOKEN = "s3cret-token"
local REPLICAS = { "10.0.9.2", "10.0.9.3" }

-- One service's figures: n requests, e of them 5xx, u upstream errors, fl in flight, all the
-- requests in bucket 6.
local function fig(n, e, u, fl)
    local h = {}
    for i = 1, 21 do
        h[i] = i == 6 and n or 0
    end
    return { n = n, e = e or 0, u = u or 0, fl = fl or 0, h = h }
end

describe("the status page on a swarm", function()
    local sum, page, state

    local function start(conf, token)
        sum = edge.swarm_edge("page_sum", conf, token)
        page = require("deployer.page")
        state = { total = {}, sources = {} }
    end

    local function control()
        start("role control\nreplicas shop-infra_edge\n", "X-Deployer-Sync-Token: " .. TOKEN .. "\n")
        edge.names["shop-infra_edge"] = REPLICAS
    end

    -- A replica that answers its figures (a table service -> figures), or nothing (nil).
    local function replica(ip, figures, seen)
        edge.hosts[ip] = function(request)
            if seen then
                seen[#seen + 1] = request
            end
            if not figures then
                return nil
            end
            return "HTTP/1.0 200 OK\r\n\r\n" .. page.encode(edge.clock, figures) .. "\n"
        end
    end

    describe("adds up each source's counts since its last answer", function()
        before_each(control)

        it("takes a source seen for the first time as a baseline, then adds what it counted", function()
            local total = sum.step(state, { a = { api = fig(100, 5, 1, 2) } }, 10)
            assert.are.same({ 0, 0, 0, 2 }, { total.api.n, total.api.e, total.api.u, total.api.fl })
            total = sum.step(state, { a = { api = fig(130, 6, 1, 3) }, b = { api = fig(50, 0, 0, 4) } }, 20)
            assert.are.same({ 30, 1, 0, 7 }, { total.api.n, total.api.e, total.api.u, total.api.fl })
            assert.are.equal(30, total.api.h[6])
            total = sum.step(state, { a = { api = fig(140, 6, 1) }, b = { api = fig(70) } }, 30)
            assert.are.same({ 60, 1, 0 }, { total.api.n, total.api.e, total.api.u })
            assert.are.equal(60, total.api.h[6])
        end)

        it("counts a restarted source's new counts from zero, never going back", function()
            sum.step(state, { a = { api = fig(500, 10) }, b = { api = fig(300) } }, 10)
            local total = sum.step(state, { a = { api = fig(520, 10) }, b = { api = fig(310) } }, 20)
            assert.are.equal(30, total.api.n)
            total = sum.step(state, { a = { api = fig(7, 1) }, b = { api = fig(320) } }, 30) -- a restarted
            assert.are.same({ 47, 1 }, { total.api.n, total.api.e })
            total = sum.step(state, { a = { api = fig(9, 1) }, b = { api = fig(320) } }, 40)
            assert.are.same({ 49, 1 }, { total.api.n, total.api.e })
        end)

        it("takes a restart that only shows as a bucket or a service gone", function()
            local a1 = { api = fig(100), web = fig(10) }
            sum.step(state, { a = a1 }, 10)
            local a2 = { api = fig(100) } -- web gone: the edge restarted, api counted 100 anew
            local total = sum.step(state, { a = a2 }, 20)
            assert.are.equal(100, total.api.n)
            assert.are.equal(0, total.web.n)
            local a3 = fig(150)
            a3.h[6], a3.h[7] = 20, 130 -- fewer in bucket 6 than before: a restart too
            total = sum.step(state, { a = { api = a3 } }, 30)
            assert.are.equal(250, total.api.n)
            for _, v in ipairs(total.api.h) do
                assert.is_true(v >= 0)
            end
        end)

        it("adds a missed sample's requests at the source's next answer", function()
            sum.step(state, { a = { api = fig(100) }, b = { api = fig(100) } }, 10)
            local total = sum.step(state, { a = { api = fig(110, 0, 0, 1) } }, 20) -- b missed it
            assert.are.same({ 10, 1 }, { total.api.n, total.api.fl })
            total = sum.step(state, { a = { api = fig(120) }, b = { api = fig(140, 0, 0, 2) } }, 30)
            assert.are.same({ 60, 2 }, { total.api.n, total.api.fl })
        end)

        it("sums in flight over the sources that answered, a gauge", function()
            local total = sum.step(state, { a = { api = fig(1, 0, 0, 3) }, b = { api = fig(1, 0, 0, 4) } }, 10)
            assert.are.equal(7, total.api.fl)
            total = sum.step(state, { a = { api = fig(1, 0, 0, 1) } }, 20)
            assert.are.equal(1, total.api.fl)
            total = sum.step(state, {}, 30)
            assert.are.equal(0, total.api.fl)
        end)

        it("counts a service a source has not had before from zero", function()
            sum.step(state, { a = { api = fig(100) } }, 10)
            local total = sum.step(state, { a = { api = fig(100), web = fig(4) } }, 20)
            assert.are.same({ 0, 4 }, { total.api.n, total.web.n })
        end)

        it("forgets a source not heard from for FORGET seconds, then takes it as new", function()
            sum.step(state, { a = { api = fig(100) }, b = { api = fig(100) } }, 10)
            sum.step(state, { a = { api = fig(110) } }, 10 + sum.FORGET)
            assert.is_not_nil(state.sources.b)
            local total = sum.step(state, { a = { api = fig(120) } }, 20 + sum.FORGET)
            assert.is_nil(state.sources.b)
            assert.is_not_nil(state.sources.a)
            total = sum.step(state, { a = { api = fig(120) }, b = { api = fig(900) } }, 30 + sum.FORGET)
            assert.are.equal(20, total.api.n) -- b's 800 since: unknown, a baseline again
        end)

        it("keeps its state as text in the page's dict, across a reload", function()
            sum.step(state, { a = { api = fig(100, 1, 2, 3) }, self = {} }, 10)
            sum.step(state, { a = { api = fig(150, 2, 2, 1) } }, 20)
            local again = sum.load(sum.dump(state))
            assert.are.same(state.total, again.total)
            assert.are.same(state.sources, again.sources)
            local total = sum.step(again, { a = { api = fig(160, 2, 2, 0) } }, 30)
            assert.are.same({ 60, 1, 0, 0 }, { total.api.n, total.api.e, total.api.u, total.api.fl })
            assert.are.same({ total = {}, sources = {} }, sum.load(nil))
        end)
    end)

    describe("on the control", function()
        before_each(control)

        it("samples every replica, with the token, and its series sum their requests", function()
            local seen = {}
            replica(REPLICAS[1], { api = fig(100) }, seen)
            replica(REPLICAS[2], { api = fig(40) }, seen)
            page.sample()
            edge.clock = edge.clock + page.INTERVAL
            replica(REPLICAS[1], { api = fig(150, 5) }, seen)
            replica(REPLICAS[2], { api = fig(90, 0, 0, 2) }, seen)
            page.sample()
            assert.are.equal(4, #seen)
            for _, request in ipairs(seen) do
                assert.matches("^GET /_deployer/page/figures HTTP/1.0\r\n", request)
                assert.matches("X-Deployer-Sync-Token: " .. TOKEN .. "\r\n", request, 1, true)
            end
            edge.request({})
            page.series_handler()
            local row = edge.body:match('"api":%[(%[[^%]]+%])%]')
            assert.are.equal("[1700000010.000,10,0.05,49.75,2,0]", row) -- 100 requests in 10 s, 5 of them 5xx
        end)

        it("leaves out a replica that does not answer, and takes its requests at its next answer", function()
            replica(REPLICAS[1], { api = fig(100) })
            replica(REPLICAS[2], { api = fig(100) })
            local total = sum.gather()
            replica(REPLICAS[2], nil)
            replica(REPLICAS[1], { api = fig(110) })
            total = sum.gather()
            assert.are.equal(10, total.api.n)
            replica(REPLICAS[2], { api = fig(130) })
            total = sum.gather()
            assert.are.equal(40, total.api.n) -- its 30 since its last answer
        end)

        it("answers another edge's request for its figures only with the token", function()
            ngx.shared.deployer_services:incr("r api /api/ blue 2xx", 7, 0)
            edge.request({ deployer_admin = "0" })
            sum.handler()
            assert.are.equal(403, edge.exited)
            edge.request({ deployer_admin = "0" })
            edge.headers["X-Deployer-Sync-Token"] = TOKEN
            sum.handler()
            assert.is_nil(edge.exited)
            assert.are.equal(7, page.decode(edge.body).s.api.n)
            edge.request({ deployer_admin = "1" }) -- an exec in the edge, or the host
            sum.handler()
            assert.are.equal(7, page.decode(edge.body).s.api.n)
        end)
    end)

    it("on one host, samples only its own counters and asks no one", function()
        start(nil, nil)
        edge.names["shop-infra_edge"] = REPLICAS
        local seen = {}
        replica(REPLICAS[1], { api = fig(100) }, seen)
        ngx.shared.deployer_services:incr("r api /api/ blue 2xx", 3, 0)
        page.sample()
        assert.are.equal(0, #seen)
        assert.are.equal(3, page.decode(ngx.shared.deployer_page:get("p1")).s.api.n)
        assert.is_nil(ngx.shared.deployer_page:get("sum"))
    end)
end)
