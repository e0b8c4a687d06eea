-- The libraries of OpenResty that the edge's modules require (ngx.balancer, ngx.semaphore,
-- ngx.ssl) and ngx.socket's TCP and UDP, faked for fake_nginx.lua: each records what the module
-- asked and answers from the spec's tables in `edge` (the fake_nginx module).

local L = {}
local edge

-- ngx.semaphore in one thread: a wait that finds no resource runs `edge.while_waiting` (what
-- other requests do meanwhile, say a leave that posts), then either got the post or times
-- out with the clock moved by its timeout.
local Semaphore = {}
Semaphore.__index = Semaphore

function Semaphore:count()
    return self.n
end

function Semaphore:post(n)
    self.n = self.n + (n or 1)
end

function Semaphore:wait(timeout)
    if self.n > 0 then
        self.n = self.n - 1
        return true
    end
    self.n = self.n - 1
    local hook = edge.while_waiting
    edge.while_waiting = nil
    if hook then
        hook()
    end
    if self.n >= 0 then
        return true
    end
    self.n = self.n + 1
    edge.clock = edge.clock + timeout
    return nil, "timeout"
end

local function preload()
    package.loaded["ngx.balancer"] = nil
    package.preload["ngx.balancer"] = function()
        local b = edge.balancer
        return {
            set_current_peer = function(ip, port)
                b.peers[#b.peers + 1] = ip .. ":" .. port
                return b.accept ~= false, b.accept == false and "bad address" or nil
            end,
            get_last_failure = function()
                return b.last_failure
            end,
            set_more_tries = function(n)
                b.more_tries = n
            end,
        }
    end
    package.loaded["ngx.semaphore"] = nil
    package.preload["ngx.semaphore"] = function()
        return {
            new = function(n)
                return setmetatable({ n = n or 0 }, Semaphore)
            end,
        }
    end
    package.loaded["ngx.ssl"] = nil
    package.preload["ngx.ssl"] = function()
        local ssl = edge.ssl
        return {
            parse_pem_cert = function(pem)
                ssl.parsed = ssl.parsed + 1
                return pem:match("BEGIN CERTIFICATE") and { pem = pem } or nil, "no certificate"
            end,
            parse_pem_priv_key = function(pem)
                return pem:match("BEGIN PRIVATE KEY") and { pem = pem } or nil, "no key"
            end,
            clear_certs = function()
                ssl.served = nil
                return true
            end,
            set_cert = function(cert)
                ssl.served = cert.pem
                return true
            end,
            set_priv_key = function()
                return true
            end,
        }
    end
end

-- Sockets -----------------------------------------------------------------------------------

-- TCP: edge.hosts[ip] is a function(request text) -> the whole answer, or nil and an error.
function L.tcp()
    local sock, peer, sent = {}, nil, nil
    function sock.settimeout() end
    function sock.connect(_, ip)
        if not edge.hosts[ip] then
            return nil, "connection refused"
        end
        peer = ip
        return true
    end
    function sock.send(_, data)
        sent = data
        return #data
    end
    function sock.receive()
        return edge.hosts[peer](sent)
    end
    function sock.close() end
    return sock
end

-- UDP to the DNS server: edge.dns(id, name) answers the query (bytes), or nil and an error.
function L.udp()
    local sock, query = {}, nil
    function sock.settimeout() end
    function sock.setpeername()
        return true
    end
    function sock.send(_, data)
        query = data
        return true
    end
    function sock.receive()
        local id = query:byte(1) * 256 + query:byte(2)
        local labels, pos = {}, 13
        while query:byte(pos) ~= 0 do
            local len = query:byte(pos)
            labels[#labels + 1] = query:sub(pos + 1, pos + len)
            pos = pos + 1 + len
        end
        edge.queries[#edge.queries + 1] = table.concat(labels, ".")
        return edge.dns(id, table.concat(labels, "."))
    end
    function sock.close() end
    return sock
end

-- A DNS server's answer to query `id` for `name`: an A record for each of `addrs`, and the
-- rcode (3: no such name). The answers name the question by a compression pointer.
function L.dns_reply(id, name, addrs, rcode)
    local parts = { string.char(math.floor(id / 256), id % 256, 0x81, 0x80 + (rcode or 0), 0, 1, 0, #addrs, 0, 0, 0, 0) }
    for label in name:gmatch("[^.]+") do
        parts[#parts + 1] = string.char(#label) .. label
    end
    parts[#parts + 1] = "\0\0\1\0\1"
    for _, addr in ipairs(addrs) do
        local a, b, c, d = addr:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
        parts[#parts + 1] = "\192\12\0\1\0\1\0\0\0\60\0\4" .. string.char(a, b, c, d)
    end
    return table.concat(parts)
end

-- Makes `require` give the fakes; `fake` is the fake_nginx module.
function L.install(fake)
    edge = fake
    preload()
end

return L
