-- The certificate the HTTPS server presents, swapped without a reload.
--
-- `deployer up` and `deployer edge reload` upload the certificate and its key (one PEM,
-- the chain then the key) as a new folder under /var/lib/deployer/tls/, point the
-- `live` link at it, and POST the PEM to the control socket's /tls. The PEM goes into a
-- shared dict with a new generation number; each worker parses it once per generation
-- and hands the parsed certificate and key to every handshake. A renewal therefore
-- changes the next handshake and nothing else: no nginx reload, no connection closed.
--
-- The master process reads the linked file when nginx starts (init_by_lua, as root):
-- the key file is readable by root only. A swarm's public replica has no such volume: it
-- reads the certificate from its swarm secret instead, and a new one comes with a new
-- replica (runtime/swarm_infra.py).

local ssl = require("ngx.ssl")

local M = {}

local FILE = "/var/lib/deployer/tls/live/tls.pem"
local SECRET = "/run/secrets/deployer_tls"
local dict = ngx.shared.deployer_tls
local worker_gen, cert, key = nil, nil, nil

local function parse(pem)
    local c, err = ssl.parse_pem_cert(pem)
    if not c then
        return nil, nil, "certificate: " .. (err or "unreadable")
    end
    local k, kerr = ssl.parse_pem_priv_key(pem)
    if not k then
        return nil, nil, "key: " .. (kerr or "unreadable")
    end
    return c, k
end

local function store(pem)
    if pem ~= dict:get("pem") then
        dict:set("pem", pem)
        dict:incr("gen", 1, 0)
    end
end

-- init_by_lua: the installed certificate, if there is one.
function M.load()
    local fh = io.open(FILE, "rb") or io.open(SECRET, "rb")
    if not fh then
        return
    end
    local pem = fh:read("*a")
    fh:close()
    if pem and pem ~= "" then
        store(pem)
    end
end

-- The control socket's POST /tls: a new certificate for the next handshakes.
function M.install_handler()
    ngx.req.read_body()
    local pem = ngx.req.get_body_data()
    if not pem then
        local path = ngx.req.get_body_file()
        local fh = path and io.open(path, "rb")
        if fh then
            pem = fh:read("*a")
            fh:close()
        end
    end
    ngx.header["Content-Type"] = "text/plain"
    local c, _, err = parse(pem or "")
    if not c then
        ngx.status = 400
        ngx.say("rejected: ", err)
        return ngx.exit(400)
    end
    store(pem)
    ngx.say("installed gen=", dict:get("gen"))
end

-- ssl_certificate_by_lua, per handshake: the current certificate and key, parsed once
-- per generation by each worker. With none installed the handshake fails: the fallback
-- certificate in the site (a throwaway, made when the container starts) is never served.
function M.certificate()
    local gen = dict:get("gen")
    if gen ~= worker_gen then
        local c, k, err = parse(dict:get("pem") or "")
        if c then
            cert, key = c, k
        elseif gen then
            ngx.log(ngx.ERR, "tls: the installed certificate cannot be used: ", err)
        end
        worker_gen = gen
    end
    if not cert then
        ngx.log(ngx.WARN, "tls: no certificate installed (run `deployer edge reload`)")
        return ngx.exit(ngx.ERROR)
    end
    local ok, err = ssl.clear_certs()
    if ok then
        ok, err = ssl.set_cert(cert)
    end
    if ok then
        ok, err = ssl.set_priv_key(key)
    end
    if not ok then
        ngx.log(ngx.ERR, "tls: cannot set the certificate: ", err)
        return ngx.exit(ngx.ERROR)
    end
end

return M
