// Reads the route state that `deployer switch` writes atomically (write + rename).
// Every request reads it, so a switch takes effect at once and needs no reload;
// keep-alive connections are never closed by a switch.
//
//   live=green              colour of the live route (X-Deployer-Colour)
//   live_host=green-1a2b3c4d   host suffix of that colour's current release
//   preview=blue
//   preview_host=blue-9f8e7d6c
//
// Each release gives its containers a new alias (backend-green-<release id>), so
// a name the edge's DNS cache may still hold always points at the same containers.
import fs from 'fs';

const FILE = '/var/lib/deployer/routes';
const COLOUR = /^(blue|green)$/;
const HOST = /^(blue|green)(-[0-9a-f]{8})?$/;

function read(key, pattern) {
    let text;
    try {
        text = fs.readFileSync(FILE, 'utf8');
    } catch (e) {
        return '';
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
        const eq = lines[i].indexOf('=');
        if (eq > 0 && lines[i].slice(0, eq) === key) {
            const value = lines[i].slice(eq + 1);
            return pattern.test(value) ? value : '';
        }
    }
    return '';
}

function live(r) { return read('live', COLOUR); }
function preview(r) { return read('preview', COLOUR); }
function liveHost(r) { return read('live_host', HOST) || read('live', COLOUR); }
function previewHost(r) { return read('preview_host', HOST) || read('preview', COLOUR); }

export default { live, preview, liveHost, previewHost };
