-- deployer.state: the route state files (core/state.py's grammar) as the edge reads them.
local edge = require("fake_nginx")

local BLUE = table.concat({
    "release 1a2b3c4d",
    "version v1.2",
    "service backend backend-blue-1a2b3c4d 8080 /health",
    "service frontend frontend-blue-1a2b3c4d 3000 /healthz?deep=1",
    "route / frontend",
    "route /api/ backend",
    "route /api/admin/ backend",
    "inflight frontend 40",
    "",
}, "\n")

local GREEN = "release 5e6f7a8b\nversion v1.3\nservice backend backend-green-5e6f7a8b 8080 /health\nroute / backend\n"

describe("the route state", function()
    local state

    before_each(function()
        edge.reset()
        state = edge.load("state")
    end)

    local function loaded(files)
        edge.state(files)
        assert.is_true(state.load())
        return state.current()
    end

    it("is empty before the first release: no live colour, no preview, no maintenance", function()
        local st = loaded({})
        assert.is_nil(st.live)
        assert.is_nil(st.preview)
        assert.same({}, st.colours)
        assert.is_nil(st.maintenance)
    end)

    it("reads a colour's release, version, services, routes and in-flight caps", function()
        local blue = loaded({ live = "blue\n", blue = BLUE }).colours.blue
        assert.equals("blue", blue.colour)
        assert.equals("1a2b3c4d", blue.release)
        assert.equals("v1.2", blue.version)
        assert.same({ host = "backend-blue-1a2b3c4d", port = 8080, health = "/health" }, blue.services.backend)
        assert.equals("/healthz?deep=1", blue.services.frontend.health)
        assert.same({ cap = 40, name = "blue|frontend" }, blue.inflight.frontend)
    end)

    it("reads a record as core/state.py writes it (tests/unit/test_lua.py checks the fixture)", function()
        local fh = assert(io.open("fixtures/green", "rb"))
        local text = fh:read("*a")
        fh:close()
        local st = loaded({ live = "green", green = text })
        local green = st.colours.green
        assert.same({ "green", "5e6f7a8b", "v2.0-rc.1" }, { st.live, green.release, green.version })
        assert.same({
            api = { host = "api-green-5e6f7a8b", port = 8080, health = "/actuator/health?group=readiness" },
            web = { host = "web-green-5e6f7a8b", port = 3000, health = "/" },
        }, green.services)
        assert.same({
            { prefix = "/api/v2/", service = "api" },
            { prefix = "/api/", service = "api" },
            { prefix = "/", service = "web" },
        }, green.routes)
        assert.same({ web = { cap = 50, name = "green|web" } }, green.inflight)
        assert.same({ api = true }, green.strip)
    end)

    it("orders the routes longest prefix first, so the most specific one wins", function()
        local routes = loaded({ blue = BLUE }).colours.blue.routes
        local prefixes = {}
        for i, r in ipairs(routes) do
            prefixes[i] = r.prefix .. " " .. r.service
        end
        assert.same({ "/api/admin/ backend", "/api/ backend", "/ frontend" }, prefixes)
    end)

    it("takes the live colour from `live`, and the other colour with a release as the preview", function()
        local st = loaded({ live = "  green \n", blue = BLUE, green = GREEN })
        assert.equals("green", st.live)
        assert.equals("blue", st.preview)
    end)

    it("has blue as the preview when both colours hold a release and none is live", function()
        local st = loaded({ blue = BLUE, green = GREEN })
        assert.is_nil(st.live)
        assert.equals("blue", st.preview)
    end)

    it("has no preview when the colour that is not live holds no release", function()
        local st = loaded({ live = "blue", blue = BLUE })
        assert.equals("blue", st.live)
        assert.is_nil(st.preview)
    end)

    it("makes no colour live that holds no release, or that is not a colour", function()
        assert.is_nil(loaded({ live = "green", blue = BLUE }).live)
        assert.equals("blue", state.current().preview)
        edge.reset()
        state = edge.load("state")
        assert.is_nil(loaded({ live = "purple", blue = BLUE, green = GREEN }).live)
        edge.reset()
        state = edge.load("state")
        assert.is_nil(loaded({ live = "blue green", blue = BLUE }).live)
    end)

    describe("a release id that breaks the grammar (lower-case hex) leaves the colour without a release", function()
        for _, line in ipairs({
            "release 1A2B3C4D",
            "release 1a2b-3c4d",
            "release ",
            "release",
            "releases 1a2b3c4d",
        }) do
            it(string.format("%q", line), function()
                local st = loaded({ live = "blue", blue = line .. "\nservice api api-blue 80 /h\nroute / api\n" })
                assert.is_nil(st.colours.blue)
                assert.is_nil(st.live)
                assert.is_nil(st.preview)
            end)
        end
    end)

    it("takes the last release line when there are two", function()
        local blue = loaded({ blue = "release 1a2b3c4d\nrelease 00ff00ff\n" }).colours.blue
        assert.equals("00ff00ff", blue.release)
    end)

    it("skips a malformed line and keeps the rest of the record", function()
        local text = table.concat({
            "release 1a2b3c4d",
            "service api api-blue-1a2b3c4d 8080 /health",
            "service web web-blue-1a2b3c4d eighty /health", -- port not a number
            "service Web web-blue-1a2b3c4d 80 /health", -- name not lower case
            "service db db_host 5432 /health", -- host not a DNS label
            "service x x-blue 80 health", -- health path without its slash
            "route api/ api", -- prefix without its slash
            "route /x/ X",
            "inflight api 0", -- no cap
            "inflight web -3",
            "inflight api many",
            "garbage",
            "\t",
            "deploy / api",
            "",
        }, "\n")
        local blue = loaded({ blue = text }).colours.blue
        assert.same({ "api" }, (function()
            local names = {}
            for name in pairs(blue.services) do
                names[#names + 1] = name
            end
            return names
        end)())
        assert.same({}, blue.routes)
        assert.same({}, blue.inflight)
    end)

    it("holds the maintenance file's text while the file is there, and none for an empty file", function()
        local text = "retry-after 120\nmessage Back at 11:00.\n"
        assert.equals(text, loaded({ live = "blue", blue = BLUE, maintenance = text }).maintenance)
        edge.state({ live = "blue", blue = BLUE, maintenance = "" })
        assert.is_true(state.load())
        assert.is_nil(state.current().maintenance)
    end)

    describe("load", function()
        it("says whether the files changed, and decodes each generation once", function()
            edge.state({ live = "blue", blue = BLUE })
            assert.is_true(state.load())
            local first = state.current()
            assert.equals(first, state.current())
            assert.is_false(state.load())
            assert.equals(first, state.current())
            edge.state({ live = "blue", blue = BLUE, green = GREEN })
            assert.is_true(state.load())
            local second = state.current()
            assert.are_not.equal(first, second)
            assert.equals("green", second.preview)
        end)

        it("keeps the state it has when a file cannot be read", function()
            edge.state({ live = "blue", blue = BLUE })
            assert.is_true(state.load())
            edge.state({ live = "blue", blue = BLUE, green = false })
            local changed, err = state.load()
            assert.is_nil(changed)
            assert.matches("Permission denied", err)
            assert.equals("blue", state.current().live)
        end)

        it("waits up to 15 s for another read under way, then gives up without reading", function()
            edge.state({ live = "blue", blue = BLUE })
            ngx.shared.deployer_state:set("loading", true, 60)
            local before = edge.clock
            local changed, err = state.load()
            assert.is_nil(changed)
            assert.matches("another read", err)
            assert.is_true(edge.clock - before >= 14.99 and edge.clock - before <= 15.01)
            assert.is_nil(state.current().live)
        end)

        it("takes the state once the other read's mark expires", function()
            edge.state({ live = "blue", blue = BLUE })
            ngx.shared.deployer_state:set("loading", true, 1)
            assert.is_true(state.load())
            assert.equals("blue", state.current().live)
            assert.is_nil(ngx.shared.deployer_state:get("loading"))
        end)

        it("does not wait in the reconcile timer, whose next tick reads again", function()
            edge.phase = "timer"
            edge.state({ live = "blue", blue = BLUE })
            ngx.shared.deployer_state:set("loading", true, 60)
            local before = edge.clock
            assert.is_nil(state.load())
            assert.equals(before, edge.clock)
            assert.is_nil(state.current().live)
        end)

        it("does not wait in the master at start (init phase)", function()
            edge.phase = "init"
            ngx.shared.deployer_state:set("loading", true, 10)
            local before = edge.clock
            assert.is_nil(state.load())
            assert.equals(before, edge.clock)
        end)
    end)

    describe("the control socket", function()
        it("answers /reload with what changed, the colours and the generation", function()
            edge.state({ live = "blue", blue = BLUE, green = GREEN })
            state.reload_handler()
            assert.equals("reloaded live=blue preview=green gen=1\n", edge.body)
            edge.request()
            state.reload_handler()
            assert.equals("unchanged live=blue preview=green gen=1\n", edge.body)
        end)

        it("answers /reload with 502 and the reason when the files cannot be read", function()
            edge.state({ blue = false })
            state.reload_handler()
            assert.equals(502, edge.exited)
            assert.matches("^not taken: .*Permission denied", edge.body)
        end)

        it("marks the edge draining on POST /drain only, and reports its connections", function()
            loaded({ live = "blue", blue = BLUE })
            edge.request({ connections_active = "3", connections_waiting = "2" })
            state.drain_handler()
            assert.equals("3 2\n", edge.body)
            assert.is_nil(state.current().draining)
            edge.method = "POST"
            state.drain_handler()
            assert.is_true(state.current().draining)
            assert.equals("blue", state.current().live)
        end)
    end)

    it("re-reads the files every second from worker 0 only", function()
        edge.worker.id = 1
        state.start_reconcile()
        assert.equals(0, #edge.timers)
        edge.worker.id = 0
        state.start_reconcile()
        assert.equals(1, edge.timers[1].every)
        edge.state({ live = "green", green = GREEN })
        edge.run_timers()
        assert.equals("green", state.current().live)
    end)
end)
