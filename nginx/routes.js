// Reads the route state that `deployer switch` writes atomically (write + rename).
// Every request reads it, so a switch takes effect at once and needs no reload;
// keep-alive connections are never closed by a switch.
import fs from 'fs';

const FILE = '/var/lib/deployer/routes';
const COLOURS = { blue: true, green: true };

function read(key) {
    let text;
    try {
        text = fs.readFileSync(FILE, 'utf8');
    } catch (e) {
        return '';
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
        const parts = lines[i].split('=');
        if (parts[0] === key && COLOURS[parts[1]]) {
            return parts[1];
        }
    }
    return '';
}

function live(r) { return read('live'); }
function preview(r) { return read('preview'); }

export default { live, preview };
