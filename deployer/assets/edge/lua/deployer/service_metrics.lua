-- Per service and configured route prefix: the public traffic's figures, for Prometheus and
-- Grafana (docs/observability.md). They are new families beside metrics.lua's per-colour
-- series, which the post-release watch reads and which this module leaves as they are.
--
-- Which requests: the public ones a configured route gave to a service (router.lua's route
-- kinds "live" and "external"). Not the preview, the health paths or the deployer's own
-- probes, and not the requests that no route took (the router's 404, "no colour is serving",
-- maintenance's 503): those have no service, and only metrics.lua counts them.
--
-- Families, in the cumulative view of /_deployer/metrics only (Prometheus computes rates):
--   deployer_service_requests_total{service,prefix,colour,class}     counter
--   deployer_service_request_duration_seconds{service,prefix}         histogram (the whole
--                                                                      exchange, as the client saw it)
--   deployer_service_upstream_errors_total{service,prefix,colour}     counter
--   deployer_service_in_flight{service,prefix,colour}                 gauge
--
-- class: "1xx" to "5xx" for what the service's upstream answered (the balancer ran; nginx's
-- own 502/504 when the upstream failed are the service's "5xx"), "edge_4xx" and "edge_5xx" for
-- answers the edge made itself before asking it (a limit's 429, max_in_flight's 503, a body
-- timeout's 408; none is under 400 after the router ran), "aborted" for a client that went
-- away (499); "other" for an upstream's status outside 100-599. As in metrics.lua, the router's
-- 502 for a service it finds no address of is the service's "5xx".
--
-- An upstream error is a request that the service should have answered and did not: the edge
-- found no address for it (the router's 502; for an external route, nginx could not resolve
-- it), or it got no response header from the upstream it asked last: no connection (refused,
-- reset, unreachable), a timeout (edge.proxy_timeout) or a header it could not read. nginx
-- answers those 502 or 504 itself, and its $upstream_header_time ends with "-". An app's own
-- 502 or 504 has a header time: a "5xx", not an upstream error. A request counts once, however
-- many peers the balancer tried (one that another peer then answered is no error).
--
-- In flight: requests the router gave to the service (from then on, a wait for a
-- max_in_flight slot included) and whose log phase has not run yet.
--
-- Bounded: the labels are service names and prefixes from the route state (the config), the
-- colour ("blue", "green", "none" for an external route) and a class, never the request's
-- path. Label values are escaped as the text format says (backslash, double quote, newline),
-- whatever characters a prefix holds.
--
-- Cost: as metrics.lua's, a request only changes this worker's Lua tables; metrics.lua's flush
-- timer adds them to the shared dict deployer_services. Each worker's in-flight counts are
-- written there (not added) under its pid at every flush, and expire unless written again, so a
-- worker that died, or that drains after a reload and is done, stops counting.

local M = {}

local dict = ngx.shared.deployer_services
local floor = math.floor

local STALE = 5 -- seconds a worker's in-flight counts last without a flush
local CLASSES = { "1xx", "2xx", "3xx", "4xx", "5xx" }
M.FAMILIES = {
    "deployer_service_requests_total",
    "deployer_service_request_duration_seconds",
    "deployer_service_upstream_errors_total",
    "deployer_service_in_flight",
}

-- The dict's keys: fields joined by a space, which neither a service name, a prefix (the route
-- state's grammar: /%S*), a colour nor a class holds.
--   r <service> <prefix> <colour> <class>   requests
--   e <service> <prefix> <colour>           upstream errors
--   h <service> <prefix> <bucket>           duration histogram (metrics.lua's buckets)
--   s <service> <prefix>                    its sum, in seconds
--   f <pid> <service> <prefix> <colour>     a worker's requests in flight

-- One record per (service, prefix, colour), with its keys' common parts: built once, so that a
-- request builds no string.
local records = {} -- service -> prefix -> colour -> record
local function record(service, prefix, colour)
    local by_prefix = records[service] or {}
    records[service] = by_prefix
    local by_colour = by_prefix[prefix] or {}
    by_prefix[prefix] = by_colour
    local rec = by_colour[colour]
    if not rec then
        rec = { key = service .. " " .. prefix .. " " .. colour, hist = service .. " " .. prefix }
        by_colour[colour] = rec
    end
    return rec
end

-- This worker's counts since its last flush, and its requests in flight now.
local pending = {} -- record key -> { [class] = n, err = n }
local hists = {} -- hist key -> { [bucket] = n, sum = seconds }
local busy = {} -- record key -> requests in flight

-- Rewrite phase (router.lua): the request goes to `service` by the route `prefix`.
function M.enter(service, prefix, colour)
    local rec = record(service, prefix ~= "" and prefix or "-", colour)
    ngx.ctx.svc = rec
    busy[rec.key] = (busy[rec.key] or 0) + 1
end

-- Whether a request's answer is an upstream error (above). `asked`: the balancer ran.
local function upstream_error(status, asked)
    if not asked then
        return status == 502 -- no address to ask
    end
    if status ~= 502 and status ~= 504 then
        return false
    end
    local header = ngx.var.upstream_header_time
    return header == nil or header == "" or header:sub(-1) == "-"
end
M.upstream_error = upstream_error

-- Log phase (metrics.lua): `b` is the whole exchange's bucket, `seconds` its time.
function M.log(rec, status, b, seconds, asked)
    local key = rec.key
    busy[key] = (busy[key] or 1) - 1
    local class
    if status == 499 then
        class = "aborted"
    elseif asked or status == 502 then
        class = CLASSES[floor(status / 100)] or "other"
    else
        class = status >= 500 and "edge_5xx" or "edge_4xx"
    end
    local p = pending[key]
    if not p then
        p = {}
        pending[key] = p
    end
    p[class] = (p[class] or 0) + 1
    if status >= 500 and upstream_error(status, asked) then
        p.err = (p.err or 0) + 1
    end
    local h = hists[rec.hist]
    if not h then
        h = { sum = 0 }
        hists[rec.hist] = h
    end
    h[b] = (h[b] or 0) + 1
    h.sum = h.sum + seconds
end

-- A request whose ngx.ctx an internal redirect emptied (nginx's own 500 goes to a named
-- location: site.conf's @deployer_no_room): its slot in flight is given back by the router's
-- variables, which survive the redirect. Not counted otherwise: metrics.lua does not either.
function M.orphan()
    local var = ngx.var
    local route = var.deployer_route
    if route == "live" or route == "external" then
        local service = var.deployer_service
        if service and service ~= "" then
            local prefix, colour = var.deployer_prefix or "", var.deployer_colour or ""
            local key = record(service, prefix ~= "" and prefix or "-", colour ~= "" and colour or "none").key
            if busy[key] and busy[key] > 0 then
                busy[key] = busy[key] - 1
            end
        end
    end
end

-- metrics.lua's flush timer: this worker's counts into the dict, and its in-flight counts.
function M.flush()
    local counts, hs = pending, hists
    pending, hists = {}, {}
    for key, p in pairs(counts) do
        for class, n in pairs(p) do
            if class == "err" then
                dict:incr("e " .. key, n, 0)
            else
                dict:incr("r " .. key .. " " .. class, n, 0)
            end
        end
    end
    for hist, h in pairs(hs) do
        for b, n in pairs(h) do
            if b ~= "sum" then
                dict:incr("h " .. hist .. " " .. b, n, 0)
            end
        end
        dict:incr("s " .. hist, h.sum, 0)
    end
    local mine = "f " .. ngx.worker.pid() .. " "
    for key, n in pairs(busy) do
        dict:set(mine .. key, n, STALE)
        if n <= 0 then
            busy[key] = nil -- written once as 0; the key expires, the view shows 0
        end
    end
end

-- A label value in the text format: backslash, double quote and newline escaped.
local ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }
local function escape(value)
    return (value:gsub('[\\"\n]', ESCAPES))
end
M.escape = escape

local function tags(service, prefix, colour)
    local text = string.format('service="%s",prefix="%s"', escape(service), escape(prefix))
    return colour and text .. string.format(',colour="%s"', escape(colour)) or text
end

-- Sorted keys of a table, for a stable view.
local function sorted(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    return keys
end

-- The dict's keys summed by family.
local function collect()
    local requests, errors, hist, sums, flight = {}, {}, {}, {}, {}
    for _, key in ipairs(dict:get_keys(0)) do
        local value = dict:get(key)
        local kind = key:sub(1, 2)
        if value then
            if kind == "r " then
                local series, class = key:match("^r (%S+ %S+ %S+) (%S+)$")
                if series then
                    requests[series] = requests[series] or {}
                    requests[series][class] = value
                    flight[series] = flight[series] or 0
                end
            elseif kind == "e " then
                errors[key:sub(3)] = value
            elseif kind == "h " then
                local series, b = key:match("^h (%S+ %S+) (%d+)$")
                if series then
                    hist[series] = hist[series] or {}
                    hist[series][tonumber(b)] = value
                end
            elseif kind == "s " then
                sums[key:sub(3)] = value
            elseif kind == "f " then
                local series = key:match("^f %d+ (%S+ %S+ %S+)$")
                if series then
                    flight[series] = (flight[series] or 0) + value
                end
            end
        end
    end
    return requests, errors, hist, sums, flight
end
M.collect = collect -- page.lua's hour of samples

-- The cumulative view's families (metrics_view.lua). `buckets`: metrics.lua's bounds.
function M.render(out, buckets)
    local requests, errors, hist, sums, flight = collect()
    out[#out + 1] = "# TYPE deployer_service_requests_total counter"
    for _, series in ipairs(sorted(requests)) do
        local labels = tags(series:match("^(%S+) (%S+) (%S+)$"))
        for _, class in ipairs(sorted(requests[series])) do
            local n = requests[series][class]
            out[#out + 1] = string.format('deployer_service_requests_total{%s,class="%s"} %d', labels, class, n)
        end
    end
    out[#out + 1] = "# TYPE deployer_service_request_duration_seconds histogram"
    for _, series in ipairs(sorted(hist)) do
        local labels, running = tags(series:match("^(%S+) (%S+)$")), 0
        for i = 1, #buckets + 1 do
            running = running + (hist[series][i] or 0)
            local le = i > #buckets and "+Inf" or tostring(buckets[i])
            out[#out + 1] =
                string.format('deployer_service_request_duration_seconds_bucket{%s,le="%s"} %d', labels, le, running)
        end
        out[#out + 1] = string.format("deployer_service_request_duration_seconds_count{%s} %d", labels, running)
        out[#out + 1] = string.format("deployer_service_request_duration_seconds_sum{%s} %.3f", labels, sums[series] or 0)
    end
    -- every series that has answered a request, at 0 when it had no error
    out[#out + 1] = "# TYPE deployer_service_upstream_errors_total counter"
    for _, series in ipairs(sorted(requests)) do
        local labels = tags(series:match("^(%S+) (%S+) (%S+)$"))
        out[#out + 1] = string.format("deployer_service_upstream_errors_total{%s} %d", labels, errors[series] or 0)
    end
    out[#out + 1] = "# TYPE deployer_service_in_flight gauge"
    for _, series in ipairs(sorted(flight)) do
        local labels = tags(series:match("^(%S+) (%S+) (%S+)$"))
        out[#out + 1] = string.format("deployer_service_in_flight{%s} %d", labels, flight[series])
    end
end

return M
