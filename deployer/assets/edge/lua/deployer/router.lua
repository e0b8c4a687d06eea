-- Per request: which colour, release and service answers, and on which addresses.
--
-- Runs in the rewrite phase (before limit_req and limit_conn, so their keys can depend
-- on the route). It leaves its choice in ngx.ctx for the balancer and the metrics, and
-- in nginx variables for the access log and the response headers.

local state = require("deployer.state")
local dns = require("deployer.dns")
local inflight = require("deployer.inflight")
local services = require("deployer.service_metrics")

local M = {}

-- How often each worker refreshes the addresses of the route state's names (dns.keep).
local KEEP_EVERY = 0.5

local function fail(status, message)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say(message)
    return ngx.exit(status)
end

-- `remote`: the client's address (the deployer's own checks come from 127.0.0.1); `prefix`:
-- the route's (the access log's "prefix"), none for a health path.
local function choose(route_kind, rec, name, expose, remote, prefix)
    local service = rec.services[name]
    if not service then
        return fail(502, "no such service in this release")
    end
    local ctx = ngx.ctx
    ctx.route = route_kind
    ctx.colour = rec.colour
    ctx.release = rec.release
    ctx.service = name
    local var = ngx.var
    var.deployer_colour = rec.colour
    var.deployer_release = rec.release
    var.deployer_service = name
    var.deployer_route = route_kind
    if prefix then
        var.deployer_prefix = prefix
    end
    if route_kind ~= "health" then
        -- The request target the app gets: the client's own (nginx passes on no other), less
        -- the route's prefix for a service with strip_prefix. A prefix the client sent
        -- percent-encoded is refused: the limits chose on the decoded path, the app would not.
        local target, strip = var.request_uri, prefix and rec.strip[name] and prefix:gsub("/$", "")
        if strip and strip ~= "" then
            if target:sub(1, #strip) ~= strip then
                return fail(400, "bad request: the path's route prefix is percent-encoded")
            end
            target = target:sub(#strip + 1)
            if target:sub(1, 1) ~= "/" then
                target = "/" .. target
            end
            var.deployer_forwarded_prefix = strip
        end
        var.deployer_target = target
    end
    if route_kind == "live" then
        services.enter(name, prefix, rec.colour) -- in flight from here (a wait for a slot too)
    end
    -- Who answered is shown on the preview server, on the live server only to requests
    -- from inside the edge (the deployer's own checks) or when edge.expose_colour is set.
    if expose or remote == "127.0.0.1" then
        var.deployer_colour_out = rec.colour
        var.deployer_release_out = rec.release
    end
    local addrs, err = dns.resolve(service.host)
    if not addrs or #addrs == 0 then
        ngx.log(ngx.WARN, "cannot resolve ", service.host, ": ", err or "no such host")
        return fail(502, "the service is not reachable")
    end
    ctx.peers = addrs
    ctx.port = service.port
    ctx.host = service.host
    -- services.*.max_in_flight: public traffic only (not the preview, the health paths or
    -- the deployer's own probes). The slot is taken by M.admit, once the limits passed.
    local cap = rec.inflight[name]
    if cap and route_kind == "live" then
        ctx.cap = cap
    end
end

-- Access phase (after limit_req and limit_conn): a slot of services.*.max_in_flight for a
-- request the router gave a cap. Taken here, not in the rewrite phase, so that a request
-- the limits refuse never holds one: a refused upload's log phase waits until nginx has
-- discarded the body it never read, and its slot would wait with it. The 503 counts as the
-- colour's answer, as users saw it.
function M.admit()
    local ctx = ngx.ctx
    local cap = ctx.cap
    if not cap then
        return
    end
    local slot = inflight.take(cap.name, cap.cap)
    if slot == false then
        ngx.header["Retry-After"] = "1"
        return fail(503, "the service is busy: try again")
    end
    ctx.inflight = slot
    -- and where an internal redirect (nginx's own 500 to @deployer_no_room), which empties
    -- ngx.ctx, cannot lose it: metrics.log gives it back from there
    ngx.var.deployer_inflight = slot
end

local function unrouted(route_kind, status, message)
    local ctx = ngx.ctx
    ctx.route, ctx.colour, ctx.release, ctx.service = route_kind, "none", "-", "-"
    ngx.var.deployer_route = route_kind
    return fail(status, message)
end

-- The public route (kind "live") or the preview route (kind "preview"). `last`: the
-- location @deployer_last, where a draining edge answers with Connection: close.
function M.route(route_kind, expose, last)
    local st = state.current()
    if st.draining and not last then
        return ngx.exec("@deployer_last")
    end
    local var = ngx.var
    local remote = var.realip_remote_addr
    if route_kind == "live" and remote == "127.0.0.1" then
        route_kind = "probe" -- the deployer's own checks, from inside the edge: not user traffic
    end
    if route_kind == "live" and st.maintenance then
        -- the 503 page; the preview route and the deployer's own probes go on as before
        return require("deployer.maintenance").answer(st.maintenance)
    end
    local colour = route_kind == "preview" and st.preview or st.live
    local rec = colour and st.colours[colour]
    if not rec then
        return unrouted(route_kind, 503, "no colour is serving")
    end
    local uri = var.uri
    for _, r in ipairs(rec.routes) do
        if uri:sub(1, #r.prefix) == r.prefix then
            return choose(route_kind, rec, r.service, expose, remote, r.prefix)
        end
    end
    return unrouted(route_kind, 404, "not found")
end

-- A route to an external upstream ([routes."<prefix>"] upstream = ...): no colour, no
-- release; the site's location proxies it. Named here for the access log and the metrics.
function M.external()
    local ctx = ngx.ctx
    ctx.route, ctx.colour, ctx.release, ctx.service = "external", "none", "-", "external"
    ngx.var.deployer_route = "external"
    ngx.var.deployer_colour = "none"
    ngx.var.deployer_service = "external"
    services.enter("external", ngx.var.deployer_prefix, "none")
end

-- /_deployer/health/<colour>[-<release>]/<service>: that service's own health path on
-- the colour's current release (optionally: only if it is that release). The upstream
-- request line is built from the route state alone, never from the request's path.
function M.health()
    local st = state.current()
    local var = ngx.var
    local rec = st.colours[var.h_colour]
    if not rec then
        return unrouted("health", 404, "no release of this colour")
    end
    if var.h_release ~= "" and var.h_release ~= rec.release then
        return unrouted("health", 404, "not the colour's current release")
    end
    local service = rec.services[var.h_service]
    if not service then
        return unrouted("health", 404, "no such service in this release")
    end
    local path, args = service.health:match("^([^?]*)%??(.*)$")
    ngx.req.set_uri(path)
    ngx.req.set_uri_args(args or "")
    return choose("health", rec, var.h_service, true, var.realip_remote_addr)
end

-- /_deployer/health/<colour>[-<release>]: every service of the colour's current release,
-- in parallel subrequests; 200 when each answered 2xx/3xx, else 503. The body lists
-- "<service> <status>" per service. A switch checks its target with this one request,
-- whatever the number of services.
function M.health_all()
    local st = state.current()
    local var = ngx.var
    local rec = st.colours[var.h_colour]
    ngx.header["Content-Type"] = "text/plain"
    ngx.header["Cache-Control"] = "no-store"
    if not rec or (var.h_release ~= "" and var.h_release ~= rec.release) then
        ngx.status = 404
        ngx.say("no such release")
        return ngx.exit(404)
    end
    local names, requests = {}, {}
    for name in pairs(rec.services) do
        names[#names + 1] = name
    end
    table.sort(names)
    for i, name in ipairs(names) do
        requests[i] = { "/_deployer/health/" .. rec.colour .. "-" .. rec.release .. "/" .. name }
    end
    -- The subrequests share the request's headers, not its variables: one id for them all.
    ngx.req.set_header("X-Request-ID", var.deployer_request_id)
    local answers = { ngx.location.capture_multi(requests) }
    local ok, lines = #names > 0, {}
    for i, name in ipairs(names) do
        local status = answers[i] and answers[i].status or 0
        if status < 200 or status >= 400 then
            ok = false
        end
        lines[#lines + 1] = name .. " " .. status
    end
    ngx.var.deployer_colour_out = rec.colour
    ngx.var.deployer_release_out = rec.release
    ngx.status = ok and 200 or 503
    ngx.say(table.concat(lines, "\n"))
    return ngx.exit(ngx.status)
end

-- Every worker, every KEEP_EVERY seconds: the names of both colours' releases resolved
-- ahead of the requests that will need them (the new release before its switch, the
-- live one through a quiet spell).
function M.start_keeping()
    local ok, err = ngx.timer.every(KEEP_EVERY, function(premature)
        if premature then
            return
        end
        local wanted = {}
        for _, rec in pairs(state.current().colours) do
            for _, service in pairs(rec.services) do
                wanted[service.host] = true
            end
        end
        dns.keep(wanted, KEEP_EVERY * 2)
    end)
    if not ok then
        ngx.log(ngx.ERR, "router: cannot start the DNS timer: ", err)
    end
end

return M
