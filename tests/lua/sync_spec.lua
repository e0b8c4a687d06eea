-- deployer.sync: swarm mode, where the control edge publishes the route state to every public
-- replica (all of them take it, or none does) and sums their metrics.
local edge = require("fake_nginx")

local TOKEN = "s3cret-token"
local BLUE = "release 1a2b3c4d\nservice web web-blue-1a2b3c4d 3000 /healthz\nroute / web\n"
local REPLICAS = { "10.0.9.2", "10.0.9.3" }

-- A public replica at `ip` that answers pushes with `status`; its requests go into `seen`.
local function replica(ip, status, seen)
    edge.hosts[ip] = function(request)
        seen[#seen + 1] = { ip = ip, request = request }
        local seq = request:match("X%-Deployer%-Sync%-Seq: (%d+)")
        return string.format("HTTP/1.0 %d OK\r\nContent-Type: text/plain\r\n\r\nok %s gen 1\n", status, seq)
    end
end

describe("swarm mode", function()
    local sync, state, seen

    -- This edge, started with `conf` as /etc/deployer/sync.conf and the token secret (or none).
    local function start(conf, token)
        sync = edge.swarm_edge("sync", conf, token)
        state = require("deployer.state")
        seen = {}
    end

    local function control()
        start("role control\nreplicas shop-infra_edge\n", "X-Deployer-Sync-Token: " .. TOKEN .. "\n")
        edge.names["shop-infra_edge"] = REPLICAS
    end

    describe("takes its role from the config", function()
        for _, case in ipairs({
            { "no config", nil, "X-Deployer-Sync-Token: t", "single" },
            { "control with a token", "role control\n", "X-Deployer-Sync-Token: t", "control" },
            { "replica with a token", "role replica\ncontrol c\n", "X-Deployer-Sync-Token: t", "replica" },
            { "replica without a token", "role replica\n", nil, "single" },
            { "a token without its header name", "role replica\n", "t", "single" },
            { "an unknown role", "role leader\n", "X-Deployer-Sync-Token: t", "single" },
        }) do
            it(case[1] .. " -> " .. case[4], function()
                start(case[2], case[3])
                assert.equals(case[4], sync.role)
                assert.equals(case[4] == "replica", sync.replica)
            end)
        end
    end)

    describe("on the control", function()
        before_each(control)

        it("commits a new state only after every replica confirmed it", function()
            replica(REPLICAS[1], 200, seen)
            replica(REPLICAS[2], 200, seen)
            edge.state({ live = "blue", blue = BLUE })
            assert.is_true(state.load())
            assert.equals("blue", state.current().live)
            assert.equals(2, #seen)
            for _, push in ipairs(seen) do
                assert.matches("^POST /_deployer/sync HTTP/1.0\r\n", push.request)
                assert.matches("X-Deployer-Sync-Token: " .. TOKEN .. "\r\n", push.request, 1, true)
                assert.matches("\r\n\r\nblue\0" .. BLUE .. "\0\0$", push.request)
            end
        end)

        it("keeps the previous state everywhere when one replica did not take the new one", function()
            replica(REPLICAS[1], 200, seen)
            replica(REPLICAS[2], 200, seen)
            edge.state({ live = "blue", blue = BLUE })
            state.load()
            seen = {}
            replica(REPLICAS[2], 500, seen)
            replica(REPLICAS[1], 200, seen)
            edge.state({ live = "blue", blue = BLUE, maintenance = "message down\n" })
            local changed, err = state.load()
            assert.is_nil(changed)
            assert.equals("not every edge replica took the new route state (10.0.9.3: HTTP 500)", err)
            assert.is_nil(state.current().maintenance)
            local last = seen[#seen].request
            assert.matches("\r\n\r\nblue\0" .. BLUE .. "\0\0$", last) -- the previous state, pushed back
            assert.is_nil(ngx.shared.deployer_state:get("sync_lock"))
        end)

        it("does not commit when the replicas' name does not resolve", function()
            edge.dns = function()
                return nil, "timeout"
            end
            edge.state({ live = "blue", blue = BLUE })
            local changed, err = state.load()
            assert.is_nil(changed)
            assert.matches("cannot resolve the edge replicas %(shop%-infra_edge%)", err)
        end)

        it("commits at start (init phase) without asking the replicas", function()
            edge.phase = "init"
            edge.state({ live = "blue", blue = BLUE })
            assert.is_true(state.load())
            assert.equals(0, #seen)
            assert.equals("blue", state.current().live)
        end)

        it("gives replicas its committed state, with a token, and 409 while it publishes", function()
            edge.phase = "init"
            edge.state({ live = "blue", blue = BLUE })
            state.load()
            edge.phase = "content"
            edge.request({})
            sync.handler()
            assert.equals(403, edge.exited)
            edge.request({})
            edge.headers["X-Deployer-Sync-Token"] = TOKEN
            sync.handler()
            assert.matches("^%d+\nblue\0" .. BLUE, edge.body)
            ngx.shared.deployer_state:set("sync_lock", true)
            edge.body = ""
            sync.handler()
            assert.equals(409, edge.exited)
            edge.method = "POST"
            ngx.shared.deployer_state:delete("sync_lock")
            sync.handler()
            assert.equals(404, edge.exited)
        end)

        it("sums every edge's metrics line by line, leaving out an edge that does not answer", function()
            local function metrics(requests, sum)
                return function()
                    return "HTTP/1.0 200 OK\r\n\r\n"
                        .. "# TYPE deployer_requests_total counter\n"
                        .. 'deployer_requests_total{route="live",class="2xx"} ' .. requests .. "\n"
                        .. "# TYPE deployer_request_duration_seconds histogram\n"
                        .. 'deployer_request_duration_seconds_sum{route="live"} ' .. sum .. "\n"
                end
            end
            edge.hosts["127.0.0.1"] = metrics(1, "0.500")
            edge.hosts[REPLICAS[1]] = metrics(10, "1.250")
            edge.request({ deployer_admin = "1" })
            sync.metrics()
            assert.equals(table.concat({
                "# TYPE deployer_requests_total counter",
                'deployer_requests_total{route="live",class="2xx"} 11',
                "# TYPE deployer_request_duration_seconds histogram",
                'deployer_request_duration_seconds_sum{route="live"} 1.750',
                "",
            }, "\n"), edge.body)
        end)

        it("answers another edge's metrics request only with the token", function()
            edge.request({ deployer_admin = "0" })
            sync.metrics()
            assert.equals(403, edge.exited)
        end)
    end)

    describe("on a replica", function()
        before_each(function()
            start("role replica\ncontrol shop-infra_control\n", "X-Deployer-Sync-Token: " .. TOKEN .. "\n")
            edge.request({})
            edge.method = "POST"
            edge.headers["X-Deployer-Sync-Token"] = TOKEN
        end)

        local function push(seq, blob)
            edge.body, edge.exited = "", nil
            edge.headers["X-Deployer-Sync-Seq"] = seq
            edge.request_body = blob
            sync.handler()
        end

        it("takes a push with a newer sequence number, and refuses a stale one", function()
            push("1700000000001", "blue\0" .. BLUE .. "\0\0")
            assert.equals("ok 1700000000001 gen 1\n", edge.body)
            assert.equals("blue", state.current().live)
            push("1700000000001", "\0\0\0")
            assert.equals(409, edge.exited)
            assert.equals("stale 1700000000001: this edge has 1700000000001\n", edge.body)
            assert.equals("blue", state.current().live)
        end)

        it("refuses a push without its sequence number or body, or without the token", function()
            push(nil, "blue\0\0\0")
            assert.equals(400, edge.exited)
            push("5", nil)
            assert.equals(400, edge.exited)
            edge.headers["X-Deployer-Sync-Token"] = "guess"
            push("6", "blue\0\0\0")
            assert.equals(403, edge.exited)
        end)

        it("pulls the control's state, unless a push came after the pull began", function()
            edge.names["shop-infra_control"] = { "10.0.9.1" }
            edge.hosts["10.0.9.1"] = function(request)
                assert.matches("^GET /_deployer/sync HTTP/1.0\r\n", request)
                return "HTTP/1.0 200 OK\r\n\r\n1700000000005\nblue\0" .. BLUE .. "\0\0"
            end
            ngx.shared.deployer_state:set("sync_pushed_at", edge.clock)
            assert.is_false(state.load())
            ngx.shared.deployer_state:set("sync_pushed_at", edge.clock - 1)
            assert.is_true(state.load())
            assert.equals("blue", state.current().live)
            assert.is_false(state.load())
        end)
    end)

    it("answers 404 on a single edge", function()
        start(nil, nil)
        sync.handler()
        assert.equals(404, edge.exited)
    end)
end)
