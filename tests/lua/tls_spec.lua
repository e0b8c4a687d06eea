-- deployer.tls: the certificate each handshake gets, swapped by the control socket's /tls
-- without a reload. ngx.ssl is the fake's: a PEM "parses" when it holds the right block.
local edge = require("fake_nginx")

local CERT = "-----BEGIN CERTIFICATE-----\nMII...\n-----END CERTIFICATE-----\n"
local KEY = "-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n"
local FILE = "/var/lib/deployer/tls/live/tls.pem"

describe("the certificate", function()
    local tls

    before_each(function()
        edge.reset()
        tls = edge.load("tls")
    end)

    local function install(pem)
        edge.request({})
        edge.method, edge.request_body = "POST", pem
        tls.install_handler()
        return edge.body
    end

    local function handshake()
        edge.request({})
        tls.certificate()
        return edge.ssl.served
    end

    it("is the installed file's when nginx starts, and none without a file", function()
        tls.load()
        assert.is_nil(handshake())
        assert.equals(ngx.ERROR, edge.exited)
        assert.matches("no certificate installed", edge.logged(ngx.WARN))
        edge.files[FILE] = CERT .. KEY
        tls.load()
        assert.equals(CERT .. KEY, handshake())
        assert.is_nil(edge.exited)
    end)

    it("is a swarm replica's secret when there is no installed file, and the file's when there is", function()
        local SECRET = "/run/secrets/deployer_tls"
        edge.files[SECRET] = CERT .. KEY
        tls.load()
        assert.equals(CERT .. KEY, handshake())
        local NEWER = CERT .. "\n" .. KEY
        edge.files[FILE] = NEWER
        tls.load()
        assert.equals(NEWER, handshake())
    end)

    it("is refused with 400 when the PEM lacks the certificate or the key", function()
        assert.equals("rejected: certificate: no certificate\n", install(KEY))
        assert.equals(400, edge.exited)
        assert.equals("rejected: key: no key\n", install(CERT))
        assert.equals("rejected: certificate: no certificate\n", install(nil))
        assert.is_nil(ngx.shared.deployer_tls:get("gen"))
    end)

    it("is the new one from the next handshake after an install, parsed once per worker", function()
        assert.equals("installed gen=1\n", install(CERT .. KEY))
        assert.equals(CERT .. KEY, handshake())
        local parsed = edge.ssl.parsed
        handshake()
        assert.equals(parsed, edge.ssl.parsed)
        assert.equals("installed gen=2\n", install(KEY .. CERT))
        assert.equals(KEY .. CERT, handshake())
    end)

    it("keeps its generation when the same PEM is installed again", function()
        install(CERT .. KEY)
        assert.equals("installed gen=1\n", install(CERT .. KEY))
    end)

    it("stays the last good one when the stored PEM cannot be used", function()
        install(CERT .. KEY)
        handshake()
        ngx.shared.deployer_tls:set("pem", "garbage")
        ngx.shared.deployer_tls:incr("gen", 1)
        assert.equals(CERT .. KEY, handshake())
        assert.matches("cannot be used: certificate", edge.logged(ngx.ERR))
    end)
end)
