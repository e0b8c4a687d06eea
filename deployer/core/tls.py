"""The edge's certificate, as the deployer hands it over (pure).

The certificate (with its chain) and the key travel as one PEM file, written by the
Engine API into a new folder of the edge's volume, tls/gen-<hash>/ (edgelayout.TLS).
A script in the edge then points the `live` link at it (one atomic rename) and gives
the PEM to nginx through the control socket; nginx's Lua presents it from the next
handshake on. Nothing reloads, so no connection is closed. The previous folder is kept
until the next renewal, and put back if nginx refuses the new one.

`deployer up` and `deployer edge reload` refuse a certificate that has expired or is not
valid yet, and warn when it expires within SOON (config/edge.py, check_dates).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deployer.core.edgelayout import CONTROL, TLS

REJECTED = 3
SOON = timedelta(days=14)  # a certificate that expires sooner is installed with a warning
# A certificate issued a moment ago by a CA whose clock is a little ahead of this machine's
# (certbot's deploy hook runs right after the issue) is not "not valid yet".
SKEW = timedelta(minutes=5)


def bundle(cert: str, key: str) -> bytes:
    """The chain, then the key, as nginx's Lua reads them."""
    return (cert.strip() + "\n" + key.strip() + "\n").encode("ascii")


def generation(pem: bytes) -> str:
    import hashlib  # here: every command reads the config, which imports this module

    return "gen-" + hashlib.sha256(pem).hexdigest()[:16]


def incoming(gen: str) -> str:
    """Where the upload lands, relative to the edge's volume (edgelayout.HOME)."""
    return f"tls/.incoming-{gen}/tls.pem"


def install(gen: str) -> str:
    """Move the upload in place, swap the link, hand it to nginx; on refusal put the old
    link back (exit REJECTED). Prints nginx's answer, then the certificate's subject and
    end date."""
    return "\n".join(
        [
            "set -eu",
            f"d={TLS}; gen={gen}; new=$d/.incoming-$gen",
            'chown -R 0:0 "$new" && chmod 0700 "$d" "$new" && chmod 0600 "$new/tls.pem"',
            'if [ -d "$d/$gen" ]; then rm -rf "$new"; else sync "$new/tls.pem"; mv "$new" "$d/$gen"; fi',
            'old=$(readlink "$d/live" 2>/dev/null || true)',
            'ln -sfn "$gen" "$d/live.tmp" && mv -fT "$d/live.tmp" "$d/live" && sync "$d"',
            # Right after `deployer up` reloaded nginx, old workers (without /tls) may still
            # answer for a moment: ask again for up to 5 s while the answer is 404.
            "i=0; while :; do",
            f'  code=0; out=$(curl -sS --max-time 10 --fail-with-body --unix-socket {CONTROL} --data-binary @"$d/live/tls.pem" http://edge/tls 2>&1) || code=$?',
            '  case "$out" in *"error: 404"*) [ $i -lt 50 ] && { i=$((i + 1)); sleep 0.1; continue; } ;; esac',
            "  break",
            "done",
            'if [ "$code" != 0 ]; then',
            '  if [ -n "$old" ] && [ "$old" != "$gen" ]; then ln -sfn "$old" "$d/live.tmp" && mv -fT "$d/live.tmp" "$d/live"; fi',
            f'  echo "$out"; exit {REJECTED}',
            "fi",
            'for g in "$d"/gen-*; do b=${g##*/}; [ "$b" = "$gen" ] || [ "$b" = "$old" ] || rm -rf "$g"; done',
            'echo "$out"',
            'openssl x509 -noout -subject -enddate -in "$d/live/tls.pem" 2>/dev/null | tr "\\n" " "',
        ]
    )


def stamp(when: datetime) -> str:
    """A certificate date as the messages give it: 2020-01-01 00:00 UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
