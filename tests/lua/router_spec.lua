-- deployer.router: which colour, release and service answers a request, and what the edge
-- answers itself (no colour, no route, maintenance, a service over its cap).
local edge = require("fake_nginx")

local BLUE = table.concat({
    "release 1a2b3c4d",
    "service web web-blue-1a2b3c4d 3000 /healthz",
    "service api api-blue-1a2b3c4d 8080 /health?deep=1",
    "service admin admin-blue-1a2b3c4d 9000 /ready",
    "route / web",
    "route /api/ api",
    "route /api/admin/ admin",
    "route /v1.0/ api",
    "route /gone/ ghost", -- a route to a service the release does not have
    "inflight api 1",
}, "\n")
local GREEN = "release 5e6f7a8b\nservice web web-green-5e6f7a8b 3000 /healthz\nroute /api/ web\n"

describe("the router", function()
    local router, inflight

    local function serve(files)
        edge.state(files)
        require("deployer.state").load()
    end

    -- One request through router.route: `kind` live or preview; `var`: nginx variables.
    local function request(kind, uri, var, expose, last)
        var = var or {}
        var.uri = uri
        var.request_uri = var.request_uri or uri -- the target as the client sent it
        var.realip_remote_addr = var.realip_remote_addr or "203.0.113.9"
        edge.request(var)
        router.route(kind, expose, last)
        if not edge.exited and not edge.exec then
            router.admit() -- the access phase, after the limits
        end
        return ngx.ctx
    end

    before_each(function()
        edge.reset()
        router = edge.load("router")
        inflight = require("deployer.inflight")
        inflight.start()
        edge.names = {
            ["web-blue-1a2b3c4d"] = { "10.0.0.2" },
            ["api-blue-1a2b3c4d"] = { "10.0.0.4", "10.0.0.3" },
            ["admin-blue-1a2b3c4d"] = { "10.0.0.5" },
            ["web-green-5e6f7a8b"] = { "10.0.1.2" },
        }
        serve({ live = "blue", blue = BLUE, green = GREEN })
    end)

    describe("matches the path by prefix, the longest first", function()
        for _, case in ipairs({
            { "/", "web" },
            { "/index.html", "web" },
            { "/api", "web" }, -- no trailing slash: not under /api/
            { "/api/", "api" },
            { "/api/users?id=1", "api" },
            { "/api/admin", "api" },
            { "/api/admin/", "admin" },
            { "/api/admin/users", "admin" },
            { "/apix/", "web" },
            { "/v1.0/items", "api" },
            { "/v1x0/items", "web" }, -- the prefix is text, not a pattern
        }) do
            it(case[1] .. " -> " .. case[2], function()
                assert.equals(case[2], request("live", case[1]).service)
            end)
        end
    end)

    it("hands the balancer the service's addresses and port, and names the answer for the log", function()
        local ctx = request("live", "/api/users")
        assert.same({ "10.0.0.3", "10.0.0.4" }, ctx.peers)
        assert.equals(8080, ctx.port)
        assert.equals("api-blue-1a2b3c4d", ctx.host)
        assert.same({ "live", "blue", "1a2b3c4d" }, { ctx.route, ctx.colour, ctx.release })
        assert.same(
            { "live", "blue", "1a2b3c4d", "api" },
            { ngx.var.deployer_route, ngx.var.deployer_colour, ngx.var.deployer_release, ngx.var.deployer_service }
        )
        assert.is_nil(edge.exited)
    end)

    describe("with strip_prefix", function()
        before_each(function()
            serve({ live = "blue", blue = BLUE .. "\nstrip api", green = GREEN })
        end)

        for _, case in ipairs({
            { "/api/users?id=1", "/users?id=1", "/api" },
            { "/api/", "/", "/api" },
            { "/api/?q=1", "/?q=1", "/api" },
            { "/v1.0/items", "/items", "/v1.0" },
            { "/api/admin/x", "/api/admin/x", nil }, -- admin's route: admin strips nothing
            { "/api", "/api", nil }, -- under / (web): as sent
        }) do
            it(case[1] .. " reaches the app as " .. case[2], function()
                request("live", case[1])
                assert.equals(case[2], ngx.var.deployer_target)
                assert.equals(case[3], ngx.var.deployer_forwarded_prefix)
                assert.is_nil(edge.exited)
            end)
        end

        it("passes the client's own target on, percent-encoding and all, under any route", function()
            request("live", "/a b", { request_uri = "/a%20b?x=%2F" })
            assert.equals("/a%20b?x=%2F", ngx.var.deployer_target)
        end)

        it("refuses a route prefix the client sent percent-encoded", function()
            request("live", "/api/users", { request_uri = "/%61pi/users" })
            assert.equals(400, ngx.status)
            assert.is_nil(ngx.var.deployer_target)
        end)
    end)

    it("names the route's prefix for the log: the longest that matched", function()
        for _, case in ipairs({ { "/api/admin/users", "/api/admin/" }, { "/api/x", "/api/" }, { "/shop", "/" } }) do
            request("live", case[1])
            assert.equals(case[2], ngx.var.deployer_prefix)
        end
        request("preview", "/api/x")
        assert.equals("/api/", ngx.var.deployer_prefix)
    end)

    it("shows which colour answered only when exposed or to the deployer's own checks", function()
        request("live", "/")
        assert.is_nil(ngx.var.deployer_colour_out)
        request("live", "/", nil, true)
        assert.equals("blue", ngx.var.deployer_colour_out)
        assert.equals("1a2b3c4d", ngx.var.deployer_release_out)
    end)

    it("counts a request from inside the edge as the deployer's probe, not user traffic", function()
        local ctx = request("live", "/", { realip_remote_addr = "127.0.0.1" })
        assert.equals("probe", ctx.route)
        assert.equals("blue", ngx.var.deployer_colour_out)
    end)

    it("sends the preview route to the colour that is not live", function()
        local ctx = request("preview", "/api/x")
        assert.same({ "preview", "green", "5e6f7a8b", "web" }, { ctx.route, ctx.colour, ctx.release, ctx.service })
    end)

    it("answers 503 when no colour is serving", function()
        edge.reset()
        router = edge.load("router")
        local ctx = request("live", "/")
        assert.equals(503, edge.exited)
        assert.equals("no colour is serving\n", edge.body)
        assert.same({ "live", "none", "-", "-" }, { ctx.route, ctx.colour, ctx.release, ctx.service })
        request("preview", "/")
        assert.equals(503, edge.exited)
    end)

    it("answers 404 for a path no route matches", function()
        serve({ live = "green", green = GREEN })
        local ctx = request("live", "/shop")
        assert.equals(404, edge.exited)
        assert.equals("not found\n", edge.body)
        assert.equals("no-store", ngx.header["Cache-Control"])
        assert.equals("none", ctx.colour)
    end)

    it("answers 502 for a route to a service the release does not have", function()
        request("live", "/gone/x")
        assert.equals(502, edge.exited)
        assert.equals("no such service in this release\n", edge.body)
    end)

    it("answers 502 when the service's name does not resolve, and says so in the log", function()
        edge.names["admin-blue-1a2b3c4d"] = nil
        local ctx = request("live", "/api/admin/")
        assert.equals(502, edge.exited)
        assert.equals("the service is not reachable\n", edge.body)
        assert.is_nil(ctx.peers)
        assert.matches("cannot resolve admin%-blue%-1a2b3c4d", edge.logged(ngx.WARN))
    end)

    describe("in maintenance", function()
        before_each(function()
            serve({ live = "blue", blue = BLUE, green = GREEN, maintenance = "retry-after 60\nmessage Back soon.\n" })
        end)

        it("answers the public route with the maintenance page", function()
            local ctx = request("live", "/api/users")
            assert.equals(503, edge.exited)
            assert.equals("60", ngx.header["Retry-After"])
            assert.matches("<p>Back soon.</p>", edge.body, 1, true)
            assert.equals("maintenance", ctx.route)
        end)

        it("lets the preview route and the deployer's probes through", function()
            assert.equals("green", request("preview", "/api/x").colour)
            assert.is_nil(edge.exited)
            assert.equals("blue", request("live", "/", { realip_remote_addr = "127.0.0.1" }).colour)
            assert.is_nil(edge.exited)
        end)
    end)

    describe("while the edge drains", function()
        before_each(function()
            edge.method = "POST"
            require("deployer.state").drain_handler()
        end)

        it("hands every request to the location that closes the connection", function()
            local ctx = request("live", "/")
            assert.equals("@deployer_last", edge.exec)
            assert.is_nil(ctx.service)
        end)

        it("routes as before in that location", function()
            assert.equals("web", request("live", "/", nil, false, true).service)
            assert.is_nil(edge.exec)
        end)
    end)

    describe("with services.*.max_in_flight", function()
        it("takes a slot for a public request and answers 503 with Retry-After over the cap", function()
            local first = request("live", "/api/a")
            assert.equals("blue|api|100", first.inflight)
            assert.equals("blue|api|100", ngx.var.deployer_inflight) -- where a redirect keeps it
            local before = edge.clock
            request("live", "/api/b")
            assert.equals(503, edge.exited)
            assert.equals("1", ngx.header["Retry-After"])
            assert.equals("the service is busy: try again\n", edge.body)
            assert.equals(inflight.WAIT, edge.clock - before)
            inflight.leave(first.inflight)
            assert.equals("blue|api|100", request("live", "/api/c").inflight)
        end)

        it("does not cap the preview, the health paths or the deployer's probes", function()
            request("live", "/api/a")
            assert.is_nil(request("live", "/api/b", { realip_remote_addr = "127.0.0.1" }).inflight)
            assert.is_nil(edge.exited)
            edge.request({ h_colour = "blue", h_release = "", h_service = "api" })
            router.health()
            assert.is_nil(edge.exited)
            assert.is_nil(ngx.ctx.inflight)
        end)
    end)

    describe("the health path of one service", function()
        local function health(colour, release, service)
            edge.request({ h_colour = colour, h_release = release, h_service = service })
            router.health()
            return ngx.ctx
        end

        it("asks the service's own health path, with its query, on the colour's release", function()
            local ctx = health("blue", "1a2b3c4d", "api")
            assert.is_nil(edge.exited)
            assert.equals("/health", edge.uri)
            assert.equals("deep=1", edge.uri_args)
            assert.same({ "health", "blue", "api", 8080 }, { ctx.route, ctx.colour, ctx.service, ctx.port })
            assert.equals("1a2b3c4d", ngx.var.deployer_release_out)
            assert.is_nil(ngx.var.deployer_prefix) -- no route's prefix: the log's is empty
        end)

        it("answers 404 for a colour without a release, another release or an unknown service", function()
            serve({ live = "blue", blue = BLUE })
            for _, case in ipairs({
                { "green", "", "web", "no release of this colour" },
                { "blue", "5e6f7a8b", "api", "not the colour's current release" },
                { "blue", "", "db", "no such service in this release" },
            }) do
                local ctx = health(case[1], case[2], case[3])
                assert.equals(404, edge.exited)
                assert.equals(case[4] .. "\n", edge.body)
                assert.equals("health", ctx.route)
                assert.is_nil(edge.uri)
            end
        end)
    end)

    describe("the health of a whole release", function()
        local function health_all(colour, release)
            edge.request({ h_colour = colour, h_release = release })
            router.health_all()
        end

        -- The status each service's health subrequest gets, on blue's release.
        local function answered(statuses)
            for service, status in pairs(statuses) do
                edge.subrequests["/_deployer/health/blue-1a2b3c4d/" .. service] = status
            end
        end

        it("is 200 with each service's status when every service answered 2xx or 3xx", function()
            answered({ admin = 200, api = 204, web = 302 })
            health_all("blue", "1a2b3c4d")
            assert.equals(200, edge.exited)
            assert.equals("admin 200\napi 204\nweb 302\n", edge.body)
        end)

        it("gives every service's subrequest the request's one id", function()
            answered({ admin = 200, api = 200, web = 200 })
            edge.request({ h_colour = "blue", h_release = "", deployer_request_id = "0123456789abcdef0123456789abcdef" })
            router.health_all()
            assert.equals("0123456789abcdef0123456789abcdef", edge.subrequest_headers["X-Request-ID"])
        end)

        it("is 503 when one service failed", function()
            answered({ admin = 200, api = 500, web = 200 })
            health_all("blue", "")
            assert.equals(503, edge.exited)
            assert.equals("admin 200\napi 500\nweb 200\n", edge.body)
        end)

        it("is 503 for a release without services, and 404 for another release", function()
            serve({ live = "blue", blue = "release 1a2b3c4d\n" })
            health_all("blue", "")
            assert.equals(503, edge.exited)
            health_all("blue", "5e6f7a8b")
            assert.equals(404, edge.exited)
            assert.equals("no such release\n", edge.body)
        end)
    end)

    it("names a route to an external upstream for the log and the metrics", function()
        edge.request({})
        router.external()
        assert.same({ "external", "none", "-", "external" }, { ngx.ctx.route, ngx.ctx.colour, ngx.ctx.release, ngx.ctx.service })
    end)

    it("keeps the names of both colours' releases resolved from a timer", function()
        router.start_keeping()
        edge.run_timers()
        table.sort(edge.queries)
        assert.same({
            "admin-blue-1a2b3c4d",
            "api-blue-1a2b3c4d",
            "web-blue-1a2b3c4d",
            "web-green-5e6f7a8b",
        }, edge.queries)
        request("live", "/api/x")
        assert.equals(4, #edge.queries) -- answered from what the timer resolved
        assert.equals(0, require("deployer.dns").waits())
    end)
end)
