-- Maintenance mode: while the route state file `maintenance` exists, the public route
-- answers every request with this 503 page and Retry-After. The preview route, the
-- health paths and the deployer's own probes (from inside the edge) are not affected.
--
-- The file (deployer/core/maintenance.py writes it) holds `retry-after <seconds>` and
-- `message <text>` lines. The deployer refuses a message that could break the markup;
-- it is escaped here all the same. The page is rendered once per change of the file.

local M = {}

local PAGE = [[<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Down for maintenance</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:15vh auto;padding:0 1em;color:#222}h1{font-size:1.5em}</style>
</head>
<body>
<h1>Down for maintenance</h1>
<p>%s</p>
</body>
</html>
]]

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

local seen_text, page, retry_after

local function render(text)
    local retry, message = "300", "We are making some changes. Please try again in a few minutes."
    for line in text:gmatch("[^\n]+") do
        local key, value = line:match("^(%S+) (.*)$")
        if key == "retry-after" and value:match("^%d+$") then
            retry = value
        elseif key == "message" and value ~= "" then
            message = value
        end
    end
    return string.format(PAGE, (message:gsub("[&<>\"']", ESCAPES))), retry
end

function M.answer(text)
    if text ~= seen_text then
        page, retry_after = render(text)
        seen_text = text
    end
    local ctx = ngx.ctx
    ctx.route, ctx.colour, ctx.release, ctx.service = "maintenance", "none", "-", "-"
    ngx.var.deployer_route = "maintenance"
    ngx.status = 503
    ngx.header["Content-Type"] = "text/html; charset=utf-8"
    ngx.header["Cache-Control"] = "no-store"
    ngx.header["Retry-After"] = retry_after
    ngx.print(page)
    return ngx.exit(503)
end

return M
