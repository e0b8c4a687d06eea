-- deployer.maintenance: the 503 page that the public route answers while the route state's
-- `maintenance` file exists (core/maintenance.py writes it).
local edge = require("fake_nginx")

describe("the maintenance page", function()
    local maintenance

    before_each(function()
        edge.reset()
        maintenance = edge.load("maintenance")
    end)

    local function answer(text)
        edge.request({})
        maintenance.answer(text)
        return edge.body:match("<p>(.-)</p>")
    end

    it("answers 503, not cached, named in the log as maintenance", function()
        answer("retry-after 120\nmessage Back at 11:00.\n")
        assert.equals(503, edge.exited)
        assert.equals("text/html; charset=utf-8", ngx.header["Content-Type"])
        assert.equals("no-store", ngx.header["Cache-Control"])
        assert.same({ "maintenance", "none", "-", "-" }, { ngx.ctx.route, ngx.ctx.colour, ngx.ctx.release, ngx.ctx.service })
        assert.equals("maintenance", ngx.var.deployer_route)
        assert.matches("^<!doctype html>", edge.body)
    end)

    it("shows the file's message and Retry-After, among the lines it does not read", function()
        local text = "since 2025-01-01T10:00:00Z\nby ci\nretry-after 120\nmessage Back at 11:00.\n"
        assert.equals("Back at 11:00.", answer(text))
        assert.equals("120", ngx.header["Retry-After"])
    end)

    it("falls back to 300 s and its own message for a file without them", function()
        assert.equals("We are making some changes. Please try again in a few minutes.", answer(""))
        assert.equals("300", ngx.header["Retry-After"])
    end)

    describe("ignores a value that breaks its line's grammar", function()
        for _, case in ipairs({
            { "retry-after soon", "300" },
            { "retry-after -5", "300" },
            { "retry-after 1.5", "300" },
            { "retry-after ", "300" },
            { "retry-after 86400", "86400" },
        }) do
            it(string.format("%q -> Retry-After %s", case[1], case[2]), function()
                answer(case[1] .. "\n")
                assert.equals(case[2], ngx.header["Retry-After"])
            end)
        end

        it("an empty message", function()
            assert.equals("We are making some changes. Please try again in a few minutes.", answer("message \n"))
        end)
    end)

    it("escapes what could break the markup, and takes % literally", function()
        assert.equals("&lt;b&gt;Tom &amp; Jerry&#39;s &quot;shop&quot;&lt;/b&gt;", answer([[message <b>Tom & Jerry's "shop"</b>]]))
        assert.equals("100% done, %s %d", answer("message 100% done, %s %d"))
    end)

    it("follows a change of the file", function()
        assert.equals("one", answer("message one"))
        assert.equals("one", answer("message one"))
        assert.equals("two", answer("message two\nretry-after 5"))
        assert.equals("5", ngx.header["Retry-After"])
    end)
end)
