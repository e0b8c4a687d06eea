-- services.*.max_in_flight: how many public requests may reach one colour of a service at
-- once. A request over the cap waits in line up to WAIT seconds for a slot, then gets 503
-- with Retry-After, so that a burst costs the excess clients a short wait or a retry
-- instead of costing the app its memory (a server-rendered front end that runs out of heap
-- restarts, and then fails every request it held). The wait also paces clients that retry
-- at once: their 503 takes WAIT seconds, not microseconds of the CPU the app needs.
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

local semaphore = require("ngx.semaphore")

local M = {}

local dict = ngx.shared.deployer_inflight
local pid, count

M.WAIT = 2 -- seconds a request over the cap waits for a slot
-- A waiter is woken by this worker's next request to finish; a slot that another worker
-- freed is seen within POLL (a worker's own waiters take most slots it frees).
local POLL = 0.25
local queues = {} -- slot key -> this worker's waiters for it, first come first woken

-- init_worker: this worker is the one that counts for its id from now on.
function M.start()
    pid, count = ngx.worker.pid(), ngx.worker.count()
    local id = ngx.worker.id()
    if id then
        dict:set("worker|" .. id, pid)
    end
    -- A count left under this pid by a worker that died holding slots (its pid now reused)
    -- is not this worker's: start from nothing.
    local mine = "|" .. pid
    for _, key in ipairs(dict:get_keys(0)) do
        if key:sub(-#mine) == mine and key:sub(1, 7) ~= "worker|" then
            dict:delete(key)
        end
    end
end

-- Takes a slot of `name` (colour|service) for this request. Returns the slot's key, nil
-- (the dict is full: not counted, let through), or false (the cap is reached).
local function enter(name, cap, key)
    local mine = dict:incr(key, 1, 0)
    if not mine then
        return nil
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

-- enter(), or wait in line up to WAIT seconds for a slot (rewrite phase: waiting yields).
-- A request that finds others of this worker waiting queues behind them.
function M.take(name, cap)
    local key = name .. "|" .. pid
    local q = queues[key]
    if not q or q:count() >= 0 then
        local slot = enter(name, cap, key)
        if slot ~= false then
            return slot
        end
    end
    if not q then
        q = semaphore.new(0)
        queues[key] = q
    end
    local deadline = ngx.now() + M.WAIT
    while true do
        ngx.update_time() -- the time nginx caches is not renewed by every wake-up
        local left = deadline - ngx.now()
        if left < 0.001 then
            return false
        end
        q:wait(math.min(POLL, left))
        local slot = enter(name, cap, key)
        if slot ~= false then
            return slot
        end
    end
end

-- Gives the request's slot back (log phase), and wakes this worker's first waiter.
function M.leave(key)
    dict:incr(key, -1, 0)
    local q = queues[key]
    if q and q:count() < 0 then
        q:post(1)
    end
end

return M
