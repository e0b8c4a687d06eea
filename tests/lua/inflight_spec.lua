-- deployer.inflight: services.*.max_in_flight, the public requests one colour of a service
-- may hold at once, summed over the current workers.
local edge = require("fake_nginx")

describe("the in-flight cap", function()
    local inflight, dict

    before_each(function()
        edge.reset()
        inflight = edge.load("inflight")
        dict = ngx.shared.deployer_inflight
        inflight.start()
    end)

    it("lets requests in up to the cap, each with its slot", function()
        assert.equals("blue|api|100", inflight.take("blue|api", 2))
        assert.equals("blue|api|100", inflight.take("blue|api", 2))
        assert.equals(2, dict:get("blue|api|100"))
    end)

    it("refuses the request over the cap after waiting 2 seconds, and counts it nowhere", function()
        inflight.take("blue|api", 1)
        local before = edge.clock
        assert.is_false(inflight.take("blue|api", 1))
        assert.equals(inflight.WAIT, edge.clock - before)
        assert.equals(1, dict:get("blue|api|100"))
    end)

    it("gives a waiting request the slot that another request gives back", function()
        local first = inflight.take("blue|api", 1)
        edge.while_waiting = function()
            inflight.leave(first)
        end
        local before = edge.clock
        assert.equals("blue|api|100", inflight.take("blue|api", 1))
        assert.equals(before, edge.clock)
        assert.equals(1, dict:get("blue|api|100"))
    end)

    it("counts each colour of a service apart", function()
        inflight.take("blue|api", 1)
        assert.equals("green|api|100", inflight.take("green|api", 1))
        assert.equals("blue|web|100", inflight.take("blue|web", 1))
    end)

    it("sums the counts of every current worker", function()
        edge.worker.count = 2
        inflight.start()
        dict:set("worker|1", 200)
        dict:set("blue|api|200", 2)
        assert.equals("blue|api|100", inflight.take("blue|api", 3))
        assert.is_false(inflight.take("blue|api", 3))
    end)

    it("does not count a worker that is gone, whose id another pid holds now", function()
        edge.worker.count = 2
        inflight.start()
        dict:set("worker|1", 300)
        dict:set("blue|api|200", 5) -- left by the worker that had id 1 before
        dict:set("blue|api|300", 1)
        assert.equals("blue|api|100", inflight.take("blue|api", 2))
        assert.is_false(inflight.take("blue|api", 2))
    end)

    it("starts a worker from nothing when its pid held slots before (a reused pid)", function()
        dict:set("blue|api|100", 4)
        dict:set("blue|api|1100", 1)
        dict:set("worker|0", 100)
        inflight.start()
        assert.is_nil(dict:get("blue|api|100"))
        assert.equals(1, dict:get("blue|api|1100"))
        assert.equals(100, dict:get("worker|0"))
    end)

    it("lets a request through uncounted when the dict has no room", function()
        dict.full = true
        assert.is_nil(inflight.take("blue|api", 1))
        assert.is_nil(inflight.take("blue|api", 1))
    end)
end)
