-- deployer.clients: the live route's judged 5xx and slow requests per client address, and the
-- sums over the K addresses with the most of them (what the post-release watch leaves out).
local edge = require("fake_nginx")

local BUCKETS = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30 }
local TRACK = 8 -- 0.1 s
local SERIES = "live|blue|1a2b3c4d"

local function labels(series)
    local route, colour, release = series:match("^([^|]*)|([^|]*)|([^|]*)$")
    return string.format('route="%s",colour="%s",release="%s"', route, colour, release)
end
local TAGS = labels(SERIES)

local function ipv4(a, b, c, d)
    return string.char(a, b, c, d)
end

local function ipv6(prefix, host)
    return prefix .. string.rep("\0", 8 - #prefix) .. host .. string.rep("\0", 8 - #host)
end

describe("the per-client counts", function()
    local clients

    before_each(function()
        edge.reset()
        clients = edge.load("clients")
    end)

    -- `requests`: { address, slow bucket or false, 5xx } each; counted and flushed into `slot`.
    local function count(requests, slot, series)
        local pending = {}
        for _, r in ipairs(requests) do
            edge.request({ binary_remote_addr = r[1] })
            clients.note(pending, r[2], r[3])
        end
        clients.flush(series or SERIES, pending.cl, slot or 1, 150)
        return pending
    end

    -- The rendered lines as a set: line -> true.
    local function render(top, first_slot)
        local out = {}
        clients.render(out, "deployer_", labels, first_slot, top, BUCKETS, TRACK)
        local lines = {}
        for _, line in ipairs(out) do
            lines[line] = true
        end
        return lines, out
    end

    local function sample(lines, name, extra, value)
        local line = string.format("deployer_%s{%s%s} %d", name, TAGS, extra or "", value)
        assert.is_true(lines[line] or false, "no line " .. line)
    end

    it("counts one IPv4 address's requests together, and each address apart", function()
        local pending = count({
            { ipv4(198, 51, 100, 7), false, true },
            { ipv4(198, 51, 100, 7), 9, true },
            { ipv4(198, 51, 100, 8), 21, false },
        })
        assert.same({ e = 2, [9] = 1 }, pending.cl[ipv4(198, 51, 100, 7)])
        assert.same({ [21] = 1 }, pending.cl[ipv4(198, 51, 100, 8)])
    end)

    it("counts an IPv6 address by its /64", function()
        local net, other = "\32\1\13\184\0\1\0\0", "\32\1\13\184\0\2\0\0"
        local pending = count({
            { ipv6(net, "\0\0\0\0\0\0\0\1"), false, true },
            { ipv6(net, "\255\255\255\255\0\0\0\2"), false, true },
            { ipv6(other, "\0\0\0\0\0\0\0\1"), false, true },
        })
        assert.same({ e = 2 }, pending.cl[net])
        assert.same({ e = 1 }, pending.cl[other])
    end)

    it("sums the 5xx of the K addresses with the most, at and beyond the number of addresses", function()
        local requests = {}
        for i, n in ipairs({ 10, 3, 2, 1 }) do
            for _ = 1, n do
                requests[#requests + 1] = { ipv4(192, 0, 2, i), false, true }
            end
        end
        count(requests)
        local lines = render(1)
        sample(lines, "client_addresses", nil, 4)
        sample(lines, "top_client_5xx", ',top="1"', 10)
        sample(render(2), "top_client_5xx", ',top="2"', 13)
        sample(render(4), "top_client_5xx", ',top="4"', 16)
        sample(render(100), "top_client_5xx", ',top="100"', 16)
    end)

    it("counts the requests slower than each bound from 100 ms, per address", function()
        count({
            { ipv4(192, 0, 2, 1), 9, false }, -- at most 0.15 s
            { ipv4(192, 0, 2, 1), 9, false },
            { ipv4(192, 0, 2, 1), 21, false }, -- over 30 s
            { ipv4(192, 0, 2, 2), 12, true }, -- at most 0.5 s
        })
        local lines = render(1)
        sample(lines, "top_client_slow", ',top="1",above="0.1"', 3)
        sample(lines, "top_client_slow", ',top="1",above="0.15"', 1)
        sample(lines, "top_client_slow", ',top="1",above="0.3"', 1)
        sample(lines, "top_client_slow", ',top="1",above="30"', 1)
        sample(lines, "top_client_5xx", ',top="1"', 1)
        local both = render(2)
        sample(both, "top_client_slow", ',top="2",above="0.3"', 2)
        sample(both, "top_client_slow", ',top="2",above="0.5"', 1)
    end)

    it("renders one TYPE line per family, with one slow line per bound from 100 ms", function()
        count({ { ipv4(192, 0, 2, 1), 9, false } })
        local _, out = render(3)
        assert.equals("# TYPE deployer_client_addresses gauge", out[1])
        assert.equals("# TYPE deployer_top_client_5xx gauge", out[3])
        assert.equals("# TYPE deployer_top_client_slow gauge", out[5])
        assert.equals(5 + #BUCKETS - TRACK + 1, #out)
    end)

    it("renders the TYPE lines alone when no client was counted", function()
        local _, out = render(3)
        assert.same({
            "# TYPE deployer_client_addresses gauge",
            "# TYPE deployer_top_client_5xx gauge",
            "# TYPE deployer_top_client_slow gauge",
        }, out)
    end)

    it("leaves the slots before a window's first slot out of the window, not out of the total", function()
        count({ { ipv4(192, 0, 2, 1), false, true } }, 10)
        count({ { ipv4(192, 0, 2, 2), false, true }, { ipv4(192, 0, 2, 2), false, true } }, 12)
        local window = render(5, 11)
        sample(window, "client_addresses", nil, 1)
        sample(window, "top_client_5xx", ',top="5"', 2)
        local total = render(5)
        sample(total, "client_addresses", nil, 2)
        sample(total, "top_client_5xx", ',top="5"', 3)
    end)

    it("lets a window's slots expire on their own", function()
        count({ { ipv4(192, 0, 2, 1), false, true } }, 10)
        edge.clock = edge.clock + 150
        local _, window = render(5, 0)
        assert.equals(3, #window) -- the TYPE lines alone
        sample(render(5), "client_addresses", nil, 1)
    end)

    it("keeps each route, colour and release apart", function()
        count({ { ipv4(192, 0, 2, 1), false, true } })
        count({ { ipv4(192, 0, 2, 1), false, true } }, 1, "live|green|5e6f7a8b")
        local lines = render(5)
        sample(lines, "top_client_5xx", ',top="5"', 1)
        assert.is_true(lines['deployer_top_client_5xx{route="live",colour="green",release="5e6f7a8b",top="5"} 1'])
    end)

    it("forgets the counts of the releases it is given, and only those", function()
        count({ { ipv4(192, 0, 2, 1), false, true } })
        count({ { ipv4(192, 0, 2, 1), false, true } }, 1, "live|green|5e6f7a8b")
        clients.forget({ ["5e6f7a8b"] = true })
        local keys = ngx.shared.deployer_clients:get_keys(0)
        assert.equals(2, #keys)
        for _, key in ipairs(keys) do
            assert.matches("|1a2b3c4d|", key, 1, true)
        end
        clients.forget({})
        assert.equals(2, #ngx.shared.deployer_clients:get_keys(0))
    end)
end)
