"""Hold idle and slow connections open against one HTTP server, for a bounded time.

    python3 slowclients.py HOST PORT --count 1000 --seconds 60 [--idle-share 0.5] [--trickle 5]

Half of the connections (--idle-share) connect and send nothing; the others send the
start of a request and then one more header line every --trickle seconds, never the
blank line that ends the headers (slowloris). A connection the server closes is opened
again after 0.1 s, so the pressure stays on for the whole run. Prints one JSON line
("SLOW_JSON {...}"): connections opened, closed by the server, connect failures, and
how many were held open (sampled every second after the first two: min, median, max).
"""

import argparse
import asyncio
import json
import statistics
import time


async def holder(host, port, slow, trickle, deadline, stats, open_now):
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except (TimeoutError, OSError):
            stats["connect_failed"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["opened"] += 1
        open_now[0] += 1
        try:
            if slow:
                writer.write(b"GET /api/version HTTP/1.1\r\nHost: bench\r\nUser-Agent: slowclient\r\n")
                await writer.drain()
            n = 0
            while time.monotonic() < deadline:
                left = deadline - time.monotonic()
                try:
                    data = await asyncio.wait_for(reader.read(4096), min(trickle, max(0.01, left)))
                except TimeoutError:
                    if slow:
                        n += 1
                        writer.write(b"X-Slow-%d: 1\r\n" % n)
                        await writer.drain()
                    continue
                if not data:  # closed by the server (a timeout, or a 408 that ended)
                    stats["closed_by_server"] += 1
                    break
                stats["answered"] += 1  # e.g. a 408: wait for the close
        except OSError:
            stats["closed_by_server"] += 1
        finally:
            open_now[0] -= 1
            writer.close()
        await asyncio.sleep(0.1)


async def sampler(deadline, open_now, samples):
    while True:
        await asyncio.sleep(1)
        if time.monotonic() >= deadline - 0.5:  # the holders are closing
            return
        samples.append(open_now[0])


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--idle-share", type=float, default=0.5)
    p.add_argument("--trickle", type=float, default=5.0)
    a = p.parse_args()
    deadline = time.monotonic() + a.seconds
    stats = {"opened": 0, "closed_by_server": 0, "connect_failed": 0, "answered": 0}
    open_now, samples = [0], []
    idle = round(a.count * a.idle_share)
    tasks = [
        asyncio.ensure_future(holder(a.host, a.port, i >= idle, a.trickle, deadline, stats, open_now))
        for i in range(a.count)
    ]
    tasks.append(asyncio.ensure_future(sampler(deadline, open_now, samples)))
    await asyncio.gather(*tasks)
    held = samples[2:] or samples or [0]  # the first two seconds are the ramp-up
    out = dict(
        stats,
        count=a.count,
        idle=idle,
        slow=a.count - idle,
        held_min=min(held),
        held_median=statistics.median(held),
        held_max=max(held),
    )
    print("SLOW_JSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
