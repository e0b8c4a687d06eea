-- An in-memory fake of the parts of OpenResty's API that the edge's Lua modules use: the `ngx`
-- global (shared dicts with expiry, ngx.var, ngx.ctx, ngx.log, a clock that only moves when a
-- spec or a sleep moves it, the response), ngx.balancer, ngx.semaphore and ngx.ssl, sockets
-- that answer from a spec's tables, and the files the modules read (route state, sync config).
--
-- Each spec calls `edge.reset()`, then `edge.load("state")` for a fresh copy of a module (the
-- modules keep their dicts and caches in locals taken when they load).

local M = {}

local new_dict = require("fake_shared_dict")
local libs = require("fake_ngx_libs")

local real_open = io.open

-- Files -------------------------------------------------------------------------------------

-- M.files[path]: the text of a file the modules read; false: it exists but cannot be read.
-- Paths under these folders that M.files does not name do not exist.
local FAKE_DIRS = { "/var/lib/deployer/", "/etc/deployer/", "/run/secrets/" }

local function fake_open(path, mode)
    for _, dir in ipairs(FAKE_DIRS) do
        if path:sub(1, #dir) == dir then
            local text = M.files[path]
            if text == false then
                return nil, path .. ": Permission denied", 13
            elseif text == nil then
                return nil, path .. ": No such file or directory", 2
            end
            return {
                read = function()
                    return text
                end,
                close = function() end,
            }
        end
    end
    return real_open(path, mode)
end

-- base64 (ngx.encode_base64) ------------------------------------------------------------------

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function encode_base64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local chars = {}
        for j = 1, 4 do
            local k = math.floor(n / 64 ^ (4 - j)) % 64
            chars[j] = B64:sub(k + 1, k + 1)
        end
        if not b then
            chars[3] = "="
        end
        if not c then
            chars[4] = "="
        end
        out[#out + 1] = table.concat(chars)
    end
    return table.concat(out)
end
M.encode_base64 = encode_base64

M.dns_reply = libs.dns_reply

local function clock()
    return M.clock
end

-- The global ----------------------------------------------------------------------------------

local LEVELS = { STDERR = 0, EMERG = 1, ALERT = 2, CRIT = 3, ERR = 4, WARN = 5, NOTICE = 6, INFO = 7, DEBUG = 8 }

-- ngx.say's and ngx.print's arguments as text (nil and booleans as words, like theirs).
local function text_of(...)
    local parts = {}
    for i = 1, select("#", ...) do
        parts[i] = tostring((select(i, ...)))
    end
    return table.concat(parts)
end

-- A new request: its variables, context and response start empty.
function M.request(var)
    ngx.var = var or {}
    ngx.ctx = {}
    ngx.header = {}
    ngx.status = 0
    M.body, M.exited, M.exec = "", nil, nil
    M.method, M.headers, M.request_body, M.uri = "GET", {}, nil, nil
    M.started = M.clock
end

function M.reset()
    M.clock = 1700000000.0
    M.phase = "rewrite"
    M.logs, M.timers, M.queries, M.files, M.hosts = {}, {}, {}, {}, {}
    M.worker = { id = 0, pid = 100, count = 1, exiting = false }
    M.balancer = { peers = {}, accept = true }
    M.ssl = { parsed = 0 }
    M.names = {}
    M.dns = function(id, name)
        local addrs = M.names[name]
        return M.dns_reply(id, name, addrs or {}, addrs and 0 or 3)
    end
    M.subrequests = {}
    M.while_waiting = nil
    local fake = {
        shared = setmetatable({}, {
            __index = function(t, name)
                local dict = new_dict(clock)
                rawset(t, name, dict)
                return dict
            end,
        }),
        OK = 0,
        ERROR = -1,
        HTTP_OK = 200,
        null = nil,
        now = function()
            return M.clock
        end,
        time = function()
            return math.floor(M.clock)
        end,
        update_time = function() end,
        sleep = function(seconds)
            M.clock = M.clock + seconds
        end,
        get_phase = function()
            return M.phase
        end,
        log = function(level, ...)
            M.logs[#M.logs + 1] = { level = level, text = text_of(...) }
        end,
        say = function(...)
            M.body = M.body .. text_of(...) .. "\n"
        end,
        print = function(...)
            M.body = M.body .. text_of(...)
        end,
        exit = function(status)
            M.exited = status
            return status
        end,
        exec = function(uri)
            M.exec = uri
        end,
        encode_base64 = encode_base64,
        req = {
            start_time = function()
                return M.started
            end,
            get_method = function()
                return M.method
            end,
            get_headers = function()
                return M.headers
            end,
            set_header = function(name, value)
                M.headers[name] = value
            end,
            read_body = function() end,
            get_body_data = function()
                return M.request_body
            end,
            get_body_file = function()
                return nil
            end,
            set_uri = function(uri)
                M.uri = uri
            end,
            set_uri_args = function(args)
                M.uri_args = args
            end,
        },
        worker = {
            id = function()
                return M.worker.id
            end,
            pid = function()
                return M.worker.pid
            end,
            count = function()
                return M.worker.count
            end,
            exiting = function()
                return M.worker.exiting
            end,
        },
        timer = {
            every = function(interval, fn)
                M.timers[#M.timers + 1] = { every = interval, fn = fn }
                return true
            end,
            at = function(delay, fn, ...)
                M.timers[#M.timers + 1] = { at = delay, fn = fn, args = { ... } }
                return true
            end,
        },
        location = {
            capture_multi = function(requests)
                local answers = {}
                M.subrequest_headers = {} -- the request's headers the subrequests got
                for name, value in pairs(M.headers) do
                    M.subrequest_headers[name] = value
                end
                for i, r in ipairs(requests) do
                    answers[i] = { status = M.subrequests[r[1]] or 404 }
                end
                return unpack(answers)
            end,
        },
        socket = { tcp = libs.tcp, udp = libs.udp },
        thread = {
            spawn = function(fn, ...)
                return { pcall(fn, ...) }
            end,
            wait = function(thread)
                return unpack(thread, 1, table.maxn(thread))
            end,
        },
    }
    for name, level in pairs(LEVELS) do
        fake[name] = level
    end
    _G.ngx = fake
    io.open = fake_open
    libs.install(M)
    M.request()
end

-- Runs the timers that are due once (`ngx.timer.at`), and every periodic one once.
function M.run_timers()
    local timers = M.timers
    M.timers = {}
    for _, t in ipairs(timers) do
        t.fn(false, unpack(t.args or {}))
        if t.every then
            M.timers[#M.timers + 1] = t
        end
    end
end

-- A fresh copy of deployer.<name> (and of every deployer module it requires).
function M.load(name)
    for key in pairs(package.loaded) do
        if key:match("^deployer%.") then
            package.loaded[key] = nil
        end
    end
    return require("deployer." .. name)
end

-- A fresh edge started with `conf` as /etc/deployer/sync.conf and `token` as the sync token's
-- secret (nil: none), and a fresh copy of deployer.<name>.
function M.swarm_edge(name, conf, token)
    M.reset()
    M.files["/etc/deployer/sync.conf"] = conf
    M.files["/run/secrets/deployer_sync"] = token
    return M.load(name)
end

-- The route state's files, as core/state.py writes them; those `files` does not name do not exist.
function M.state(files)
    for _, name in ipairs({ "live", "blue", "green", "maintenance" }) do
        M.files["/var/lib/deployer/state/" .. name] = files[name]
    end
end

-- A request to `handler` (a view: metrics_view.render) with the variables `var`: the body's
-- lines as a set, and in order.
function M.lines(handler, var)
    M.request(var)
    handler()
    local set, list = {}, {}
    for line in M.body:gmatch("[^\n]+") do
        set[line] = true
        list[#list + 1] = line
    end
    return set, list
end

-- The logs at `level` (ngx.WARN, ...) joined by newlines.
function M.logged(level)
    local lines = {}
    for _, entry in ipairs(M.logs) do
        if entry.level == level then
            lines[#lines + 1] = entry.text
        end
    end
    return table.concat(lines, "\n")
end

return M
