-- services.*.max_in_flight: how many public requests may reach one colour of a service at
-- once. Over the cap the edge answers 503 with Retry-After at once, so that a burst costs
-- the excess clients a retry instead of costing the app its memory (a server-rendered
-- front end that runs out of heap restarts, and then fails every request it held).
--
-- Each worker counts its own requests in the shared dict under its pid, so a check sums
-- every worker's count. A request enters in the router (rewrite phase) and leaves in the
-- log phase, which nginx runs for every request that entered, including those whose
-- client went away. Only the current workers' counts are summed (each registers its pid
-- by worker id when it starts), so a worker that died, or one draining after a reload,
-- cannot hold slots that nobody will give back: for the drain (at most
-- worker_shutdown_timeout), its requests are not counted.
--
-- Services without a cap cost nothing here: the router does not call in.

local M = {}

local dict = ngx.shared.deployer_inflight
local pid, count

-- init_worker: this worker is the one that counts for its id from now on.
function M.start()
    pid, count = ngx.worker.pid(), ngx.worker.count()
    local id = ngx.worker.id()
    if id then
        dict:set("worker|" .. id, pid)
    end
end

-- Takes a slot of `name` (colour|service) for this request; nil when the cap is reached.
function M.enter(name, cap)
    local key = name .. "|" .. pid
    local mine = dict:incr(key, 1, 0)
    if not mine then
        return nil -- the dict is full: fail closed would refuse everything, so let it pass
    end
    local total = mine
    for id = 0, count - 1 do
        local other = dict:get("worker|" .. id)
        if other and other ~= pid then
            total = total + (dict:get(name .. "|" .. other) or 0)
        end
    end
    if total > cap then
        dict:incr(key, -1, 0)
        return false
    end
    return key
end

-- Gives the request's slot back (log phase).
function M.leave(key)
    dict:incr(key, -1, 0)
end

return M
