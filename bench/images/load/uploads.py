"""Uploads against one HTTP server for a bounded time: a flood of slow ones, or real clients.

    python3 uploads.py HOST PORT flood --count 2000 --body 20971520 --chunk 32768 --every 1 --seconds 30
    python3 uploads.py HOST PORT clients --count 8 --body 262144 --seconds 30

flood: --count connections, each a POST announcing a body of --body bytes and sending --chunk
bytes of it every --every seconds (a slow upload), opened over the first two seconds. One the
server answers (429, 503, ...) or closes is opened again after 0.1 s, so the pressure stays
on for the whole run.
clients: --count clients, each POSTing a body of --body bytes at once, one after another, on
a new connection each time.

Prints one JSON line ("UPLOADS_JSON {...}"): connections opened, connect failures, the
answers by status ("closed" when the server closed without one, "reset" on an error), and
for a flood how many were held open unanswered (sampled every half second: median, max),
for clients the answers' latency (p50, p99, in ms).
"""

import argparse
import asyncio
import json
import socket
import statistics
import time


def status_of(data):
    if not data:
        return "closed"
    try:
        return data.split(b" ", 2)[1].decode()
    except IndexError:
        return "garbled"


async def one_upload(a, deadline, stats, held, slow):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(a.host, a.port), 5)
    except (TimeoutError, OSError):
        stats["connect_failed"] += 1
        await asyncio.sleep(0.5)
        return None
    stats["opened"] += 1
    head = f"POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: {a.body}\r\nConnection: close\r\n\r\n"
    held[0] += 1
    answer = None
    try:
        writer.write(head.encode() + (b"" if slow else b"u" * a.body))
        sent = 0
        while answer is None and time.monotonic() < deadline:
            wait = a.every if slow and sent < a.body else max(0.01, deadline - time.monotonic())
            try:
                answer = status_of(await asyncio.wait_for(reader.read(4096), min(wait, deadline - time.monotonic())))
            except TimeoutError:
                if slow and sent < a.body:
                    n = min(a.chunk, a.body - sent)
                    writer.write(b"u" * n)
                    await asyncio.wait_for(writer.drain(), 5)
                    sent += n
    except (OSError, TimeoutError):
        answer = "reset"
    finally:
        held[0] -= 1
        writer.close()
    if answer is not None:
        stats["answers"][answer] = stats["answers"].get(answer, 0) + 1
    return answer


async def flooder(a, deadline, stats, held, start):
    await asyncio.sleep(start)  # a ramp: not every SYN at once into the server's listen queue
    while time.monotonic() < deadline:
        await one_upload(a, deadline, stats, held, slow=True)
        await asyncio.sleep(0.1)


async def client(a, deadline, stats, held, latencies):
    while time.monotonic() < deadline:
        began = time.monotonic()
        if await one_upload(a, deadline, stats, held, slow=False) is not None:
            latencies.append(1000 * (time.monotonic() - began))


async def sampler(deadline, held, samples):
    while time.monotonic() < deadline - 0.5:
        await asyncio.sleep(0.5)
        samples.append(held[0])


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("mode", choices=("flood", "clients"))
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--body", type=int, default=20 << 20)
    p.add_argument("--chunk", type=int, default=32 << 10)
    p.add_argument("--every", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=30)
    a = p.parse_args()
    a.host = socket.gethostbyname(a.host)  # once: not a DNS query per connection
    deadline = time.monotonic() + a.seconds
    stats = {"opened": 0, "connect_failed": 0, "answers": {}}
    held, samples, latencies = [0], [], []
    if a.mode == "flood":
        tasks = [flooder(a, deadline, stats, held, 2.0 * i / a.count) for i in range(a.count)]
    else:
        tasks = [client(a, deadline, stats, held, latencies) for _ in range(a.count)]
    await asyncio.gather(*tasks, sampler(deadline, held, samples))
    out = dict(stats, mode=a.mode, count=a.count, body=a.body)
    if a.mode == "flood":
        out.update(held_median=statistics.median(samples or [0]), held_max=max(samples or [0]))
    else:
        latencies.sort()
        pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else None  # noqa: E731
        out.update(p50_ms=pick(0.5), p99_ms=pick(0.99))
    print("UPLOADS_JSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
