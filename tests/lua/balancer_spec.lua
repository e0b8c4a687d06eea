-- deployer.balancer: the address among a service's replicas that each try of a request goes to.
local edge = require("fake_nginx")

describe("the balancer", function()
    local balancer

    before_each(function()
        edge.reset()
        balancer = edge.load("balancer")
    end)

    local function new_request(peers, port)
        edge.request()
        ngx.ctx.peers, ngx.ctx.port = peers, port or 8080
    end

    -- One try of the current request: the address it went to.
    local function try(failure)
        edge.balancer.last_failure = failure
        local before = #edge.balancer.peers
        balancer.run()
        assert.equals(before + 1, #edge.balancer.peers)
        return edge.balancer.peers[#edge.balancer.peers]
    end

    -- The first try of `n` requests over `peers`, in order.
    local function first_tries(peers, n)
        local chosen = {}
        for i = 1, n do
            new_request(peers)
            chosen[i] = try()
        end
        return chosen
    end

    it("answers 502 when the router left no addresses", function()
        balancer.run()
        assert.equals(502, edge.exited)
        assert.same({}, edge.balancer.peers)
    end)

    it("connects to the one address of a single container, on a retry too", function()
        new_request({ "10.0.0.2" }, 3000)
        assert.equals("10.0.0.2:3000", try())
        assert.is_nil(edge.balancer.more_tries)
        assert.equals("10.0.0.2:3000", try("failed"))
    end)

    it("starts each request at the next replica in turn", function()
        local peers = { "10.0.0.2", "10.0.0.3", "10.0.0.4" }
        local chosen = first_tries(peers, 6)
        assert.same({ chosen[1], chosen[2], chosen[3] }, { chosen[4], chosen[5], chosen[6] })
        table.sort(chosen)
        assert.same({ "10.0.0.2:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.3:8080", "10.0.0.4:8080", "10.0.0.4:8080" }, chosen)
        assert.equals(2, edge.balancer.more_tries)
    end)

    it("tries every replica once when each connection fails", function()
        new_request({ "10.0.0.2", "10.0.0.3", "10.0.0.4" })
        local seen = { try(), try("failed"), try("failed") }
        table.sort(seen)
        assert.same({ "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080" }, seen)
    end)

    it("skips a replica whose connection failed, for 5 seconds", function()
        local peers = { "10.0.0.2", "10.0.0.3" }
        new_request(peers)
        local bad = try()
        local good = try("failed")
        assert.are_not.equal(bad, good)
        assert.same({ good, good, good, good }, first_tries(peers, 4))
        edge.clock = edge.clock + 5.001
        local later = first_tries(peers, 2)
        table.sort(later)
        assert.same({ "10.0.0.2:8080", "10.0.0.3:8080" }, later)
    end)

    it("does not count an answer that only moved the request on (not a failed connection)", function()
        local peers = { "10.0.0.2", "10.0.0.3" }
        new_request(peers)
        try()
        try("next")
        local chosen = first_tries(peers, 2)
        table.sort(chosen)
        assert.same({ "10.0.0.2:8080", "10.0.0.3:8080" }, chosen)
    end)

    it("still connects somewhere when every replica failed lately", function()
        local peers = { "10.0.0.2", "10.0.0.3" }
        new_request(peers)
        try()
        try("failed")
        new_request(peers)
        try()
        assert.matches("^10%.0%.0%.[23]:8080$", try("failed"))
        new_request(peers)
        assert.matches("^10%.0%.0%.[23]:8080$", try())
        assert.is_nil(edge.exited)
    end)

    it("answers 502 and logs when nginx refuses the address", function()
        edge.balancer.accept = false
        new_request({ "10.0.0.2" })
        balancer.run()
        assert.equals(502, edge.exited)
        assert.matches("set_current_peer 10.0.0.2:8080: bad address", edge.logged(ngx.ERR), 1, true)
    end)
end)
