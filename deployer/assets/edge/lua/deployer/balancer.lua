-- The balancer of the one upstream {} block: connects to an address the router chose.
--
-- Because every app is reached through this single block, nginx's keepalive module
-- pools the connections (keyed by address): a request reuses an idle connection to the
-- same container instead of opening one and leaving it in TIME_WAIT.
--
-- With several addresses (swarm replicas) it starts at a rotating one and, when a
-- connection fails, tries the next; an address that failed is skipped for FAIL_SECONDS
-- by this worker, unless every address failed.

local balancer = require("ngx.balancer")

local M = {}

local FAIL_SECONDS = 5
local failed_until = {} -- "ip:port" -> time
local turn = 0

local function healthy(peer, now)
    local t = failed_until[peer]
    return not t or t < now
end

function M.run()
    local ctx = ngx.ctx
    local peers, port = ctx.peers, ctx.port
    if not peers then
        return ngx.exit(502)
    end
    local n = #peers
    if n == 1 and not ctx.tries then
        -- the common case (one container per service on a single host): nothing to choose.
        -- nginx may still call again: a request that met a pooled connection the app had
        -- closed is retried on a new one, and that retry starts from here (ctx.first).
        ctx.tries, ctx.first = 1, 0
        local ok, err = balancer.set_current_peer(peers[1], port)
        if not ok then
            ngx.log(ngx.ERR, "set_current_peer ", peers[1], ":", port, ": ", err)
            return ngx.exit(502)
        end
        return
    end
    local now = ngx.now()
    if ctx.tries then
        -- a retry: the previous address failed
        local state = balancer.get_last_failure()
        if state == "failed" and ctx.last then
            failed_until[ctx.last] = now + FAIL_SECONDS
        end
    else
        ctx.tries = 0
        turn = turn + 1
        ctx.first = turn
        balancer.set_more_tries(n - 1)
    end
    local chosen
    for i = 0, n - 1 do
        local ip = peers[(ctx.first + ctx.tries + i) % n + 1]
        if healthy(ip .. ":" .. port, now) then
            chosen = ip
            ctx.tries = ctx.tries + i
            break
        end
    end
    chosen = chosen or peers[(ctx.first + ctx.tries) % n + 1]
    ctx.tries = ctx.tries + 1
    ctx.last = chosen .. ":" .. port
    local ok, err = balancer.set_current_peer(chosen, port)
    if not ok then
        ngx.log(ngx.ERR, "set_current_peer ", chosen, ":", port, ": ", err)
        return ngx.exit(502)
    end
end

return M
