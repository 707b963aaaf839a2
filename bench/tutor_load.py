"""Load on the adaptive tutor service (``metalearn serve``), loopback only, bounded in count and time.

Starts ``metalearn serve --port 0`` in a subprocess (one server process, one thread for numpy
and torch), then drives ``POST /next-item`` from this process with a small asyncio HTTP/1.1
keep-alive client (hand-written, so the client costs little CPU on a 2-core machine):

1. closed loop: 1, 10 and 100 concurrent clients, each sending its next request as soon as
   the answer arrives -> requests/s (the ceiling at that concurrency), p50 / p99 latency;
2. open loop at a fixed rate (default 1,000 requests/s over 100 connections): requests are
   scheduled on a clock and latency counts from the scheduled time, so queueing is included
   (no coordinated omission) -> achieved rate, p50 / p99. Target: p99 < 100 ms at 1,000/s.

Each request is a random student: K ~ Uniform{0..20} answered items of the model, random
answers. ``--profile`` runs the server under cProfile and prints where its time went.

    python bench/tutor_load.py                     # about 1 minute
    python bench/tutor_load.py --profile           # + the server's profile (slower server)
    python bench/tutor_load.py --seconds 3 --requests 3000 --rate 500   # quicker

Loopback only: the server listens on 127.0.0.1. The client and server share the machine's
cores, so on 2 cores the figures are a lower bound for a server with its own cores.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pstats
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# --profile: the server under cProfile with a CPU clock (time.process_time), switched on once the
# socket listens, so the profile shows the serving, not the imports, and other jobs on a shared
# machine do not inflate it.
PROFILED_SERVER = """
import cProfile, sys, time
from metalearn_lite.atomic import atomic_write_text
from metalearn_lite.education.service import serve
from metalearn_lite.education.tutor import load_default_tutor
profile = cProfile.Profile(time.process_time)
def ready(host, port):
    atomic_write_text(sys.argv[2], f"{port}\\n")
    profile.enable()
try:
    serve(load_default_tutor(), "127.0.0.1", 0, on_ready=ready)
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
"""


# --- the client ---------------------------------------------------------------------------
def make_requests(item_names: list[str], count: int, seed: int, max_answers: int = 20) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        k = rng.randint(0, max_answers)
        items = rng.sample(item_names, k)
        body = json.dumps({"answers": [{"item": i, "correct": rng.random() < 0.5} for i in items]}).encode()
        out.append(b"POST /next-item HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return out


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> int:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def closed_loop(port: int, payloads: list[bytes], clients: int, seconds: float,
                      max_requests: int) -> tuple[list[float], float, int]:
    """``clients`` connections, each sending back to back; stops at ``max_requests`` or ``seconds``."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds

    async def client(idx: int) -> None:
        nonlocal sent, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while sent < max_requests and time.perf_counter() < deadline:
                payload = payloads[sent % len(payloads)]
                sent += 1
                t0 = time.perf_counter()
                status = await _exchange(reader, writer, payload)
                latencies.append(time.perf_counter() - t0)
                errors += status != 200
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, time.perf_counter() - t0, errors


async def open_loop(port: int, payloads: list[bytes], rate: float, seconds: float,
                    connections: int) -> tuple[list[float], float, int, int]:
    """Requests scheduled at ``rate``/s over a pool of connections; latency from the scheduled time."""
    total = int(rate * seconds)
    queue: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                job = await queue.get()
                if job is None:
                    return
                scheduled, payload = job
                status = await _exchange(reader, writer, payload)
                latencies.append(time.perf_counter() - scheduled)
                errors += status != 200
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((scheduled, payloads[i % len(payloads)]))
    backlog = queue.qsize()  # not yet sent when the schedule ended: dropped (the run is bounded in time)
    while not queue.empty():
        queue.get_nowait()
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies, time.perf_counter() - start, errors, backlog


# --- the server ---------------------------------------------------------------------------
def start_server(tmp: Path, profile: Path | None) -> tuple[subprocess.Popen, int]:
    port_file = tmp / "port"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    if profile is not None:
        cmd = [sys.executable, "-c", PROFILED_SERVER, str(profile), str(port_file)]
    else:
        cmd = [sys.executable, "-m", "metalearn_lite", "serve", "--port", "0", "--port-file", str(port_file)]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not port_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"metalearn serve exited: {proc.communicate()[0]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("metalearn serve did not start within 120 s")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def in_process_costs(tutor, payloads: list[bytes], repeats: int = 3) -> tuple[float, float, float]:
    """CPU seconds per request: the model alone (ids + next_item), the whole ASGI app (no network) with
    its fast path, and through FastAPI's routing (``fast_path=False``); the two apps alternate."""
    from metalearn_lite.education.service import create_app

    bodies = [p.split(b"\r\n\r\n", 1)[1] for p in payloads[:500]]
    parsed = [json.loads(b)["answers"] for b in bodies]
    t0 = time.process_time()
    for _ in range(repeats):
        for answers in parsed:
            items = tutor.item_indices([a["item"] for a in answers])
            tutor.next_item(items, [1.0 if a["correct"] else 0.0 for a in answers])
    model = (time.process_time() - t0) / (repeats * len(parsed))
    apps = {True: create_app(tutor), False: create_app(tutor, fast_path=False)}

    async def call(app, body: bytes) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/next-item", "raw_path": b"/next-item", "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
                 "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list = []

        async def receive():
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 200, sent

    async def run() -> dict:
        spent = {True: 0.0, False: 0.0}
        for app in apps.values():
            for body in bodies[:50]:
                await call(app, body)
        for _ in range(repeats):
            for fast, app in apps.items():
                t0 = time.process_time()
                for body in bodies:
                    await call(app, body)
                spent[fast] += time.process_time() - t0
        return {k: v / (repeats * len(bodies)) for k, v in spent.items()}

    asgi = asyncio.run(run())
    return model, asgi[True], asgi[False]


def summary(latencies: list[float]) -> tuple[float, float, float]:
    ms = np.asarray(latencies) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,10,100", help="closed-loop concurrency levels")
    parser.add_argument("--seconds", type=float, default=8.0, help="time limit per level")
    parser.add_argument("--requests", type=int, default=20000, help="request limit per level")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop rate (requests/s); 0 skips it")
    parser.add_argument("--rate-connections", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="run the server under cProfile and print the top")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

    from metalearn_lite.education.tutor import load_default_tutor

    tutor = load_default_tutor()
    payloads = make_requests(list(tutor.item_names), 2000, args.seed)
    print(f"tutor_load: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with "
          f"other jobs: figures are noisy), python {platform.python_version()}, client loop {loop_name}")
    print("load average (1, 5, 15 min) at the start: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(f"server: metalearn serve (uvicorn, 1 process, 1 thread) on 127.0.0.1; model {tutor.num_items} items; "
          f"requests: POST /next-item with K ~ U{{0..20}} answers")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prof_path = tmp / "server.prof" if args.profile else None
        proc, port = start_server(tmp, prof_path)
        try:
            asyncio.run(closed_loop(port, payloads, 10, 2.0, 500))  # warm-up
            print(f"\n{'mode':28s} {'requests':>9s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} "
                  f"{'errors':>6s} {'server CPU us/req':>18s}")

            def row(label, lat, wall, errors, cpu):
                p50, p99, worst = summary(lat)
                print(f"{label:28s} {len(lat):9d} {len(lat) / wall:8.0f} {p50:8.2f} {p99:8.2f} {worst:8.2f} "
                      f"{errors:6d} {cpu / len(lat) * 1e6:18.0f}", flush=True)
                return p99

            for clients in [int(c) for c in args.clients.split(",")]:
                cpu0 = cpu_seconds(proc.pid)
                lat, wall, errors = asyncio.run(closed_loop(port, payloads, clients, args.seconds, args.requests))
                row(f"closed loop, {clients} clients", lat, wall, errors, cpu_seconds(proc.pid) - cpu0)
            if args.rate > 0:
                cpu0 = cpu_seconds(proc.pid)
                lat, wall, errors, backlog = asyncio.run(
                    open_loop(port, payloads, args.rate, args.seconds, args.rate_connections))
                p99 = row(f"open loop, {args.rate:.0f}/s offered", lat, wall, errors, cpu_seconds(proc.pid) - cpu0)
                verdict = "met" if p99 < 100 and len(lat) / wall > 0.95 * args.rate else "NOT met"
                print(f"\ntarget p99 < 100 ms at {args.rate:.0f} requests/s: {verdict} (p99 {p99:.1f} ms over the "
                      f"served requests, achieved {len(lat) / wall:.0f}/s; {backlog} of {int(args.rate * args.seconds)} "
                      f"not yet sent when the schedule ended, dropped)")
        finally:
            stop_server(proc)
        print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
        model, asgi, routed = in_process_costs(tutor, payloads)
        print(f"\nin-process CPU per request (no network, this process): model (ids + next_item) {model * 1e6:.0f} us; "
              f"whole ASGI app {asgi * 1e6:.0f} us with its fast path, {routed * 1e6:.0f} us through FastAPI's routing "
              f"({routed / asgi:.1f}x); the rest of the server CPU above is uvicorn's HTTP handling")
        if prof_path is not None and prof_path.exists():
            stats = pstats.Stats(str(prof_path))
            print("\nserver profile (cProfile, CPU time while serving; cProfile itself slows the server down):")
            stats.sort_stats("tottime").print_stats(22)
            print("where the time goes, cumulative:")
            stats.sort_stats("cumulative").print_stats("httptools_impl|fastapi/routing|service.py|tutor.py|json", 14)


if __name__ == "__main__":
    main()
