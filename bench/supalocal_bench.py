#!/usr/bin/env python
"""Bench of the local Supabase stack (supalocal): sustained REST rate and realtime delivery latency.

Why this shape: the stack runs in a child process (its own interpreter, like a real server) so the
load generator's CPU never hides in the server's latency. REST load is open-loop: requests are fired
on a fixed schedule whatever the previous ones are doing, so a slow server shows up as latency, not
as a quietly lower rate. The realtime phase runs *while* the REST load continues.

Phases:
1. REST: ``--rate`` req/s for ``--duration`` s, a mix of command inserts (40 %), filtered selects
   (40 %) and ``parameter_latest`` upserts on a conflict key (20 %), over aiohttp keep-alive.
2. Realtime: the official async client subscribes to ``machine_commands`` INSERTs filtered by
   ``machine_id=eq.<machine>``; ``--events`` commands are inserted at ``--event-rate``/s (plus commands
   for another machine, which must not arrive); latency = POST sent → event received.

Usage: ``.venv/bin/python bench/supalocal_bench.py [--rate 200] [--duration 15] [--events 500]
[--event-rate 50] [--results bench/RESULTS.md]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import platform
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

DEFAULT_RATE = 200.0
DEFAULT_DURATION_S = 15.0
DEFAULT_EVENTS = 500
DEFAULT_EVENT_RATE = 50.0
DEFAULT_RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Local Supabase stack (supalocal)"
REST_P99_TARGET_MS = 50.0
REALTIME_P99_TARGET_MS = 100.0
EVENT_TIMEOUT_S = 10.0
MIX = ("insert", "select", "insert", "select", "upsert")  # 40 / 40 / 20


def _serve(conn: Connection) -> None:
    """Child process: run a Stack until the parent says stop."""

    async def main() -> None:
        from supalocal.stack import Stack

        async with Stack() as stack:
            conn.send({"url": stack.url, "service_key": stack.service_key, "db_url": stack.db_url})
            await asyncio.to_thread(conn.recv)

    asyncio.run(main())


@dataclass
class Samples:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    started: float = 0.0
    finished: float = 0.0

    def row(self, name: str) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        span = max(self.finished - self.started, 1e-9)
        return {
            "name": name,
            "n": len(lat),
            "errors": self.errors,
            "rate": len(lat) / span,
            "p50": q[49],
            "p99": q[98],
            "max": lat[-1] if lat else float("nan"),
        }


async def _machine_and_parameters(http: aiohttp.ClientSession, rest: str) -> tuple[str, list[str]]:
    async with http.get(f"{rest}/machines", params={"select": "id", "limit": "1"}) as resp:
        machine = (await resp.json())[0]["id"]
    async with http.get(f"{rest}/parameters", params={"select": "id", "machine_id": f"eq.{machine}"}) as resp:
        params = [p["id"] for p in await resp.json()]
    return machine, params


async def _one_request(
    http: aiohttp.ClientSession, rest: str, kind: str, i: int, machine: str, params: list[str]
) -> None:
    if kind == "insert":
        body = {"machine_id": machine, "type": "stop_recipe", "payload": {"bench": i}}
        req = http.post(f"{rest}/machine_commands", json=body, headers={"Prefer": "return=representation"})
    elif kind == "select":
        query = {
            "select": "id,status,created_at",
            "machine_id": f"eq.{machine}",
            "status": "eq.pending",
            "order": "id.desc",
            "limit": "10",
        }
        req = http.get(f"{rest}/machine_commands", params=query)
    else:
        body = {"machine_id": machine, "parameter_id": params[i % len(params)], "value": i, "ts": "now"}
        req = http.post(
            f"{rest}/parameter_latest",
            json=body,
            params={"on_conflict": "machine_id,parameter_id"},
            headers={"Prefer": "return=minimal,resolution=merge-duplicates"},
        )
    async with req as resp:
        await resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{kind}: HTTP {resp.status} {await resp.text()}")


async def rest_load(
    http: aiohttp.ClientSession,
    rest: str,
    *,
    rate: float,
    duration: float,
    machine: str,
    params: list[str],
    stop: asyncio.Event | None = None,
) -> Samples:
    """Open-loop load: request i is sent at start + i/rate."""
    samples = Samples(started=time.perf_counter())
    tasks: set[asyncio.Task[None]] = set()

    async def timed(kind: str, i: int) -> None:
        t0 = time.perf_counter()
        try:
            await _one_request(http, rest, kind, i, machine, params)
        except (RuntimeError, aiohttp.ClientError):
            samples.errors += 1
            return
        samples.latencies_ms.append((time.perf_counter() - t0) * 1000)

    i = 0
    while (stop is None and i < rate * duration) or (stop is not None and not stop.is_set()):
        delay = samples.started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(timed(MIX[i % len(MIX)], i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    await asyncio.gather(*tasks)
    samples.finished = time.perf_counter()
    return samples


async def realtime_latency(
    info: dict[str, Any], http: aiohttp.ClientSession, rest: str, *, events: int, event_rate: float, machine: str
) -> Samples:
    from supabase import acreate_client

    client = await acreate_client(info["url"], info["service_key"])
    sent: dict[str, float] = {}
    samples = Samples()
    done = asyncio.Event()
    subscribed = asyncio.Event()
    foreign = 0

    def on_insert(payload: dict[str, Any]) -> None:
        nonlocal foreign
        record = payload["data"]["record"]
        key = record.get("idempotency_key") or ""
        if record["machine_id"] != machine:
            foreign += 1
        elif key in sent:
            samples.latencies_ms.append((time.perf_counter() - sent.pop(key)) * 1000)
            if len(samples.latencies_ms) == events:
                done.set()

    def on_system(msg: Any) -> None:
        if msg.extension == "postgres_changes" and msg.status == "ok":
            subscribed.set()

    channel = client.channel("bench-commands")
    channel.on_postgres_changes(
        "INSERT", on_insert, table="machine_commands", schema="public", filter=f"machine_id=eq.{machine}"
    )
    channel.on_system(on_system)
    try:
        await channel.subscribe()
        await asyncio.wait_for(subscribed.wait(), EVENT_TIMEOUT_S)
        other = await _other_machine(http, rest)
        run = uuid.uuid4().hex[:8]
        samples.started = time.perf_counter()
        for i in range(events):
            delay = samples.started + i / event_rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = f"bench-{run}-{i}"
            sent[key] = time.perf_counter()
            body = {"machine_id": machine, "type": "stop_recipe", "idempotency_key": key}
            async with http.post(f"{rest}/machine_commands", json=body, headers={"Prefer": "return=minimal"}) as resp:
                if resp.status != 201:
                    samples.errors += 1
            if i % 10 == 0:  # another machine's command stream, which must never be delivered
                body = {"machine_id": other, "type": "stop_recipe"}
                async with http.post(f"{rest}/machine_commands", json=body) as resp:
                    await resp.read()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), EVENT_TIMEOUT_S)
        samples.finished = time.perf_counter()
        samples.errors += len(sent) + foreign  # lost events, and any event of the other machine
    finally:
        await client.remove_all_channels()
        await client.postgrest.aclose()
    return samples


async def _other_machine(http: aiohttp.ClientSession, rest: str) -> str:
    body = {"name": "bench other machine", "serial_number": f"BENCH-{uuid.uuid4().hex[:8]}"}
    async with http.post(f"{rest}/machines", json=body, headers={"Prefer": "return=representation"}) as resp:
        return (await resp.json())[0]["id"]


async def run(info: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    rest = f"{info['url']}/rest/v1"
    headers = {"apikey": info["service_key"], "Authorization": f"Bearer {info['service_key']}"}
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
        machine, params = await _machine_and_parameters(http, rest)
        await rest_load(http, rest, rate=20, duration=1, machine=machine, params=params)  # warm-up
        rest_alone = await rest_load(http, rest, rate=args.rate, duration=args.duration, machine=machine, params=params)
        stop = asyncio.Event()
        background = asyncio.create_task(
            rest_load(http, rest, rate=args.rate, duration=0, machine=machine, params=params, stop=stop)
        )
        rt = await realtime_latency(info, http, rest, events=args.events, event_rate=args.event_rate, machine=machine)
        stop.set()
        rest_during = await background
    return [
        rest_alone.row(f"REST {args.rate:g} req/s"),
        rest_during.row(f"REST {args.rate:g} req/s during realtime"),
        rt.row("realtime insert → event"),
    ]


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| measurement | n | errors | achieved /s | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['n']} | {r['errors']} | {r['rate']:.1f} | {r['p50']:.1f} | "
            f"{r['p99']:.1f} | {r['max']:.1f} |"
        )
    return "\n".join(lines)


def write_results(path: Path, table: str, command: str) -> None:
    """Replace (or append) only our section of the shared results file."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    body = (
        f"{SECTION}\n\nCommand: `{command}`  \nMachine: {platform.machine()}, {mp.cpu_count()} cores, "
        f"Python {platform.python_version()}; stack in a child process, loopback.  \n"
        f"Targets: REST p99 < {REST_P99_TARGET_MS:g} ms at 200 req/s; realtime p99 < {REALTIME_P99_TARGET_MS:g} ms."
        f"\n\n{table}\n"
    )
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + (text[end + 1 :] if end != -1 else "")
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="REST requests per second")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, help="REST phase length (s)")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="realtime events to time")
    parser.add_argument("--event-rate", type=float, default=DEFAULT_EVENT_RATE, help="realtime inserts per second")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results markdown to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        info = parent.recv()
        rows = asyncio.run(run(info, args))
    finally:
        parent.send("stop")
        server.join(timeout=30)
    table = render(rows)
    print(table)
    ok = rows[0]["p99"] < REST_P99_TARGET_MS and rows[2]["p99"] < REALTIME_P99_TARGET_MS and not rows[2]["errors"]
    print("PASS" if ok else "FAIL")
    if not args.no_write:
        write_results(args.results, table, " ".join([".venv/bin/python", *sys.argv]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
