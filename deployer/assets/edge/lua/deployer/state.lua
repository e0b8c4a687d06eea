-- The route state: which colour is live, and what each colour's current release is.
--
-- The deployer writes three small files in /var/lib/deployer/state (write + fsync + rename):
--
--   live         one word: blue, green, or nothing before the first switch
--   blue, green  the colour's current release, one fact per line (deployer/core/state.py
--                writes this grammar; it is the only other place that knows it):
--                  release 1a2b3c4d
--                  version v1.2
--                  service <name> <host> <port> <health path>
--                  route <prefix> <service>
--                  inflight <service> <n>   (services.*.max_in_flight: inflight.lua)
--                  strip <service>          (services.*.strip_prefix: router.lua)
--   maintenance  present while maintenance mode is on: the 503 page's message and
--                Retry-After (lua/deployer/maintenance.lua renders it)
--
-- The files are read only when they change: a writer calls the control socket's
-- /reload (or the reconcile timer notices), the text goes into a shared dict with a new
-- generation number, and each worker decodes it once per generation. A request costs
-- two shared-dict reads, never a file read.

local sync = require("deployer.sync") -- swarm mode: control and replicas (docs/scale-out.md)

local M = {}

local DIR = "/var/lib/deployer/state/"
-- The grammar of deployer/core/names.py (tests/unit/test_edge_grammar.py holds the two to
-- the same examples): the colours in their order, and for a release id and a service name
-- their shortest and longest lengths and Lua patterns, one of which a name must match.
local COLOURS = { "blue", "green" }
local GRAMMAR = {
    release = { 8, 8, "^[0-9a-f]+$" },
    service = { 1, 24, "^[a-z]$", "^[a-z][a-z0-9-]*[a-z0-9]$" },
}
local FILES = { "live", COLOURS[1], COLOURS[2], "maintenance" }
M.COLOURS = COLOURS

local shared = ngx.shared.deployer_state
local worker_gen, worker_state = nil, nil

-- A file's text; "" when it does not exist; nil and why when it cannot be read (taking an
-- empty state for that would leave no colour serving).
local function read(path)
    local fh, err = io.open(path, "rb")
    if not fh then
        if err and err:find("No such file", 1, true) then
            return ""
        end
        return nil, err
    end
    local text = fh:read("*a") or ""
    fh:close()
    return text
end

local function is(kind, name)
    local rule = GRAMMAR[kind]
    if not name or #name < rule[1] or #name > rule[2] then
        return false
    end
    for i = 3, #rule do
        if name:find(rule[i]) then
            return true
        end
    end
    return false
end

function M.is_release(name)
    return is("release", name)
end

local function commit(blob)
    shared:set("blob", blob)
    shared:incr("gen", 1, 0)
end

-- Reads the files into the shared dict; bumps the generation when anything changed.
-- Returns true (changed), false (unchanged), or nil and why the change was not taken.
-- A swarm's public replica has no files: it takes the control's state (sync.lua).
local function load_files()
    local parts = {}
    for i, name in ipairs(FILES) do
        local text, err = read(DIR .. name)
        if not text then
            return nil, err
        end
        parts[i] = text
    end
    local blob = table.concat(parts, "\0")
    if blob ~= shared:get("blob") or not shared:get("gen") then
        return sync.publish(blob, commit)
    end
    return false
end

-- How long one read may take: on a swarm's control, a read publishes to every replica
-- (sync.lua), which takes seconds when one of them does not answer.
local LOAD_SECONDS = 15

function M.load()
    if sync.replica then
        return sync.pull()
    end
    -- One read at a time across the workers: a read that stalled between the files and the
    -- commit must not put back the state that a newer read (a /reload) has just replaced.
    -- A writer's /reload waits for a read under way (the reconcile timer may have met its
    -- write first), then reads itself, so it answers with its write's own outcome; the
    -- timer does not wait (its next tick reads again), nor does the master at (re)start,
    -- which may not sleep. The mark expires, in case its worker dies holding it.
    local phase = ngx.get_phase()
    local can_wait = phase ~= "init" and phase ~= "timer"
    for _ = 1, LOAD_SECONDS * 100 do
        if shared:add("loading", true, LOAD_SECONDS) then
            local ok, changed, err = pcall(load_files)
            shared:delete("loading")
            if not ok then
                return nil, changed
            end
            return changed, err
        end
        if not can_wait then
            break
        end
        ngx.sleep(0.01)
    end
    return nil, "another read of the route state is under way"
end

local function parse_record(colour, text)
    local rec = { colour = colour, services = {}, routes = {}, inflight = {}, strip = {} }
    for line in text:gmatch("[^\n]+") do
        local kind, rest = line:match("^(%a+) (.*)$")
        if kind == "release" and is("release", rest) then
            rec.release = rest
        elseif kind == "version" then
            rec.version = rest
        elseif kind == "service" then
            local name, host, port, health = rest:match("^(%S+) ([a-z0-9.-]+) (%d+) (/%S*)$")
            if is("service", name) then
                rec.services[name] = { host = host, port = tonumber(port), health = health }
            end
        elseif kind == "inflight" then
            local name, cap = rest:match("^(%S+) (%d+)$")
            if is("service", name) and tonumber(cap) > 0 then
                rec.inflight[name] = { cap = tonumber(cap), name = colour .. "|" .. name }
            end
        elseif kind == "strip" then
            if is("service", rest) then
                rec.strip[rest] = true
            end
        elseif kind == "route" then
            local prefix, service = rest:match("^(/%S*) (%S+)$")
            if is("service", service) then
                rec.routes[#rec.routes + 1] = { prefix = prefix, service = service }
            end
        end
    end
    if not rec.release then
        return nil
    end
    -- longest prefix first: the most specific route wins, as with nginx locations
    table.sort(rec.routes, function(a, b)
        return #a.prefix > #b.prefix
    end)
    return rec
end

local function decode(blob)
    local parts = {}
    for part in (blob .. "\0"):gmatch("([^%z]*)%z") do
        parts[#parts + 1] = part
    end
    local st = { colours = {} }
    local live = (parts[1] or ""):match("^%s*(%a+)%s*$")
    for i, colour in ipairs(COLOURS) do
        st.colours[colour] = parse_record(colour, parts[i + 1] or "")
    end
    if live and st.colours[live] then
        st.live = live
    end
    -- The preview is the colour that is not live, when it has a release (the first such).
    for _, colour in ipairs(COLOURS) do
        if colour ~= st.live and st.colours[colour] and not st.preview then
            st.preview = colour
        end
    end
    if parts[4] and parts[4] ~= "" then
        st.maintenance = parts[4]
    end
    return st
end

-- This worker's view of the state, decoded once per generation.
function M.current()
    local gen = shared:get("gen")
    if gen ~= worker_gen or not worker_state then
        worker_state = decode(shared:get("blob") or "")
        worker_state.draining = shared:get("draining") -- this edge is being replaced
        worker_gen = gen
    end
    return worker_state
end

-- The control socket's /drain. POST: this edge is being replaced by one that listens on the
-- same ports beside it; every answer of router.route now closes its connection, so that
-- keep-alive clients reconnect (and the kernel may give them the new edge) before this one
-- quits. Both: its client connections, "<active> <waiting>" (stub_status's counters: the
-- one asking is active; waiting are idle keep-alive connections and new ones).
function M.drain_handler()
    if ngx.req.get_method() == "POST" then
        shared:set("draining", true)
        shared:incr("gen", 1, 0)
    end
    ngx.header["Content-Type"] = "text/plain"
    ngx.say(ngx.var.connections_active, " ", ngx.var.connections_waiting)
end

-- The control socket's /reload: writers call it after each rename.
function M.reload_handler()
    local changed, err = M.load()
    ngx.header["Content-Type"] = "text/plain"
    if changed == nil then
        ngx.status = 502
        ngx.say("not taken: ", err)
        return ngx.exit(502)
    end
    local st = M.current()
    ngx.say(
        changed and "reloaded" or "unchanged",
        " live=", st.live or "",
        " preview=", st.preview or "",
        " gen=", shared:get("gen")
    )
end

-- One worker re-reads the files every second, so a write whose /reload was lost (or a
-- file changed by hand) still takes effect.
function M.start_reconcile()
    if ngx.worker.id() ~= 0 then
        return
    end
    ngx.timer.every(1, function(premature)
        if not premature then
            M.load()
        end
    end)
end

return M
