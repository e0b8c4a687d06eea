-- deployer.dns: the addresses of a release's names from Docker's DNS server, and the cache that
-- keeps requests from waiting on it.
local edge = require("fake_nginx")

describe("the DNS client", function()
    local dns

    before_each(function()
        edge.reset()
        dns = edge.load("dns")
        edge.names = { ["api-blue-1a2b3c4d"] = { "10.0.0.9", "10.0.0.10", "10.0.0.3" } }
    end)

    describe("reads an answer", function()
        it("as its A records, sorted", function()
            assert.same({ "10.0.0.10", "10.0.0.3", "10.0.0.9" }, dns.query("api-blue-1a2b3c4d"))
            assert.same({ "api-blue-1a2b3c4d" }, edge.queries)
        end)

        it("as no address for a name that does not exist", function()
            assert.same({}, dns.query("gone-blue-1a2b3c4d"))
        end)

        it("as an error for a server failure, another query's answer or a cut answer", function()
            local reply
            edge.dns = function(id, name)
                return reply(id, name)
            end
            reply = function(id, name)
                return edge.dns_reply(id, name, {}, 2)
            end
            assert.same({ nil, "rcode 2" }, { dns.query("api") })
            reply = function(id, name)
                return edge.dns_reply((id + 1) % 65536, name, { "10.0.0.1" })
            end
            assert.same({ nil, "bad answer" }, { dns.query("api") })
            reply = function(id, name)
                return edge.dns_reply(id, name, { "10.0.0.1" }):sub(1, -8)
            end
            assert.same({ nil, "short record" }, { dns.query("api") })
            reply = function()
                return "\0\1"
            end
            assert.same({ nil, "bad answer" }, { dns.query("api") })
        end)

        it("skipping records that are not IPv4 addresses", function()
            edge.dns = function(id, name)
                local answer = edge.dns_reply(id, name, { "10.0.0.7" })
                local header = answer:sub(1, 7) .. "\2" .. answer:sub(9, 12)
                -- a CNAME record (type 5) before the A record, both naming the question
                local cname = "\192\12\0\5\0\1\0\0\0\60\0\2\192\12"
                local question_end = 12 + #name + 2 + 4
                return header .. answer:sub(13, question_end) .. cname .. answer:sub(question_end + 1)
            end
            assert.same({ "10.0.0.7" }, dns.query("api-blue-1a2b3c4d"))
        end)
    end)

    describe("resolves for a request", function()
        it("asking once, then from the cache for a second", function()
            assert.same({ "10.0.0.10", "10.0.0.3", "10.0.0.9" }, dns.resolve("api-blue-1a2b3c4d"))
            edge.clock = edge.clock + 0.9
            dns.resolve("api-blue-1a2b3c4d")
            assert.equals(1, #edge.queries)
            assert.equals(1, dns.waits())
        end)

        it("using a stale answer for up to 5 s while one refresh runs in the background", function()
            dns.resolve("api-blue-1a2b3c4d")
            edge.names["api-blue-1a2b3c4d"] = { "10.0.0.20" }
            edge.clock = edge.clock + 3
            assert.same({ "10.0.0.10", "10.0.0.3", "10.0.0.9" }, dns.resolve("api-blue-1a2b3c4d"))
            dns.resolve("api-blue-1a2b3c4d")
            assert.equals(1, #edge.timers)
            assert.equals(1, dns.waits())
            edge.run_timers()
            assert.same({ "10.0.0.20" }, dns.resolve("api-blue-1a2b3c4d"))
        end)

        it("keeping the stale answer when the refresh fails", function()
            dns.resolve("api-blue-1a2b3c4d")
            edge.clock = edge.clock + 2
            edge.dns = function()
                return nil, "timeout"
            end
            dns.resolve("api-blue-1a2b3c4d")
            edge.run_timers()
            assert.same({ "10.0.0.10", "10.0.0.3", "10.0.0.9" }, dns.resolve("api-blue-1a2b3c4d"))
            assert.equals(1, #edge.timers) -- the next request asks again
        end)

        it("waiting for a fresh answer after a quiet spell of 5 s or more", function()
            dns.resolve("api-blue-1a2b3c4d")
            edge.names["api-blue-1a2b3c4d"] = { "10.0.0.20" }
            edge.clock = edge.clock + 1 + 5
            assert.same({ "10.0.0.20" }, dns.resolve("api-blue-1a2b3c4d"))
            assert.equals(2, dns.waits())
        end)

        it("asking again for a name that did not exist after 0.2 s", function()
            assert.same({}, dns.resolve("web-green-5e6f7a8b"))
            edge.names["web-green-5e6f7a8b"] = { "10.0.1.2" }
            edge.clock = edge.clock + 0.1
            assert.same({}, dns.resolve("web-green-5e6f7a8b"))
            edge.clock = edge.clock + 0.11
            assert.same({ "10.0.1.2" }, dns.resolve("web-green-5e6f7a8b"))
        end)

        it("failing with the error when there is no answer and none cached", function()
            edge.dns = function()
                return nil, "timeout"
            end
            assert.same({ nil, "timeout" }, { dns.resolve("api-blue-1a2b3c4d") })
        end)
    end)

    describe("keeps the route state's names", function()
        it("asking for a new name and for one that expires within the time given", function()
            dns.keep({ ["api-blue-1a2b3c4d"] = true }, 1)
            assert.equals(1, #edge.queries)
            dns.keep({ ["api-blue-1a2b3c4d"] = true }, 0.5)
            assert.equals(1, #edge.queries)
            edge.clock = edge.clock + 0.6
            dns.keep({ ["api-blue-1a2b3c4d"] = true }, 0.5)
            assert.equals(2, #edge.queries)
            dns.resolve("api-blue-1a2b3c4d")
            assert.equals(0, dns.waits())
        end)

        it("dropping a name no longer wanted a minute after its answer expired", function()
            dns.keep({ ["api-blue-1a2b3c4d"] = true }, 1)
            edge.clock = edge.clock + 60
            dns.keep({}, 1)
            edge.clock = edge.clock + 1.1
            dns.keep({}, 1)
            edge.names["api-blue-1a2b3c4d"] = { "10.0.0.20" }
            assert.same({ "10.0.0.20" }, dns.resolve("api-blue-1a2b3c4d"))
            assert.equals(1, dns.waits())
        end)
    end)
end)
