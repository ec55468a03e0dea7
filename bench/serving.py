"""Serving benchmark: heald's prediction API against a naive per-request FastAPI server loading the same model file.

Both servers are separate processes on loopback, started once and measured in alternation within one run:
for every round and every cell (1 and 32 concurrent clients, 1-row and 100-row requests) heald and the naive
server each take load for ``--seconds``, in alternating order. heald is measured twice per cell: quiet, and with
a retrain running in it the whole time (back-to-back retrains on 10k labelled rows, started through the loop's
own ``start``, on the configured executor). Reported: requests/s, p50 and p99 latency, the server process's CPU
per request, and the ratios the issue asks for.

heald's side is the daemon's own app (``daemon.api.create_app`` on ``ApiServer``) over a store built by
``daemon.compose.build``; the peer is ten lines: ``skops.io.load`` and ``model.predict(pd.DataFrame(rows))``
in a sync FastAPI route, as a service written in an afternoon would be. The model is a 100-tree forest on
10k x 20 rows saved with n_jobs=2 (the training default on this machine). The load generator is a small
asyncio HTTP/1.1 keep-alive client in this process (wrk is not installed), the same for both servers.

    .venv/bin/python bench/serving.py                        # 2 rounds of 4 s per cell, process executor
    .venv/bin/python bench/serving.py --executor threads     # the same with retrains on a daemon thread
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODEL = "m"
FEATURES = 20

NAIVE = """
import sys
import pandas as pd
import skops.io as sio
import uvicorn
from fastapi import FastAPI

model = sio.load(sys.argv[1], trusted=sio.get_untrusted_types(file=sys.argv[1]))
app = FastAPI()

@app.post("/models/m/predict")
def predict(body: dict) -> dict:
    return {"predictions": model.predict(pd.DataFrame(body["rows"])).tolist()}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def dataset(rows: int, seed: int) -> pd.DataFrame:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=FEATURES, n_informative=8, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    frame["y"] = y
    return frame


def settings_for(state: Path, executor: str, port: int) -> Any:
    from daemon.config import ModelSettings, Policy, Settings

    return Settings.model_validate(
        {
            "state_dir": state,
            "api_port": port,
            "tick_seconds": 3600,
            "executor": executor,
            "n_estimators": 100,
            "policy": Policy(min_retrain_rows=300, min_gain=-1.0),
            "models": [ModelSettings(name=MODEL, target="y", task="classification")],
        }
    )


def prepare(state: Path) -> Path:
    """A model onboarded through heald (100 trees, n_jobs=2) and 10k labelled rows to retrain on; its file."""
    from daemon.compose import build
    from daemon.onboard import onboard
    from pipeline.train import TrainParams

    heald = build(settings_for(state, "inline", 0))
    now = datetime.now(UTC) - timedelta(hours=2)
    version = onboard(
        heald.store,
        heald.registry,
        name=MODEL,
        frame=dataset(10_000, 0),
        target="y",
        now=now,
        params=TrainParams(n_estimators=100, n_jobs=2),
    )
    batch = state / "labelled.csv"
    dataset(10_000, 1).to_csv(batch, index=False)
    heald.store.add_batch(
        model=MODEL, received_at=now, source="landing", path=str(batch), rows=10_000, labelled=True, fingerprint=""
    )
    heald.close()
    return heald.settings.artifacts / version.artifact


def serve_heald(state: Path, executor: str, port: int) -> None:
    """The heald server process: the daemon's app, plus retrains kept running while ``retrain.on`` exists."""
    from daemon.api import ApiServer, create_app
    from daemon.capture import Capture
    from daemon.compose import build
    from daemon.metrics import Metrics
    from knowledge.values import ActionKind

    heald = build(settings_for(state, executor, port))
    api = ApiServer(
        create_app(
            lambda: heald, Capture(heald.settings.landing, lambda: heald.store), Metrics(heald.store, heald.registry)
        ),
        "127.0.0.1",
        port,
    )
    api.start()
    (state / "ready").write_text("1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    running: int | None = None
    while not stop.wait(0.1):
        finished = heald.loop.collect(datetime.now(UTC))
        if running is not None and running in finished:
            with (state / "retrains").open("a") as done:
                done.write(f"{running}\n")
            running = None
            (state / "busy").unlink()
        if running is None and (state / "retrain.on").exists():
            now = datetime.now(UTC)
            action = heald.store.plan_action(
                model=MODEL,
                kind=ActionKind.RETRAIN,
                at=now,
                actor="bench",
                reason="bench",
                params={"since": (now - timedelta(days=1)).isoformat()},
            )
            (state / "busy").write_text(str(action.id))
            heald.loop.start(action, heald.store.get_model(MODEL), now)
            running = action.id
    api.stop()
    heald.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not listen within {timeout} s")


@dataclass
class Measured:
    requests: int
    seconds: float
    latencies: list[float]
    cpu: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


async def client(port: int, body: bytes, end: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /models/{MODEL}/predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    while time.perf_counter() < end:
        started = time.perf_counter()
        writer.write(request)
        headers = await reader.readuntil(b"\r\n\r\n")
        length = int(headers.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if not headers.startswith(b"HTTP/1.1 200"):
            errors.append(1)
    writer.close()


def load(port: int, pid: int, clients: int, rows: list[dict[str, float]], seconds: float) -> Measured:
    body = json.dumps({"rows": rows}).encode()
    latencies: list[float] = []
    errors: list[int] = []
    server = psutil.Process(pid)

    async def run(duration: float, into: list[float]) -> float:
        end = time.perf_counter() + duration
        start = time.perf_counter()
        await asyncio.gather(*(client(port, body, end, into, errors) for _ in range(clients)))
        return time.perf_counter() - start

    asyncio.run(run(min(1.0, seconds / 4), []))  # warm-up: connections, caches
    errors.clear()
    before = sum(server.cpu_times()[:2])
    elapsed = asyncio.run(run(seconds, latencies))
    cpu = sum(server.cpu_times()[:2]) - before
    return Measured(requests=len(latencies), seconds=elapsed, latencies=latencies, cpu=cpu, errors=len(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--executor", default="process", choices=["threads", "process"])
    parser.add_argument("--serve-heald", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_heald:
        serve_heald(args.serve_heald, args.executor, args.port)
        return
    with tempfile.TemporaryDirectory(prefix="heald-serving-") as tmp:
        bench(Path(tmp), args)


def bench(tmp: Path, args: argparse.Namespace) -> None:
    state = tmp / "state"
    artifact = prepare(state)
    heald_port, naive_port = free_port(), free_port()
    naive_py = tmp / "naive.py"
    naive_py.write_text(NAIVE)
    here = Path(__file__).resolve()
    servers = {
        "heald": subprocess.Popen(
            [
                sys.executable,
                str(here),
                "--serve-heald",
                str(state),
                "--executor",
                args.executor,
                "--port",
                str(heald_port),
            ]
        ),
        "naive": subprocess.Popen([sys.executable, str(naive_py), str(artifact), str(naive_port)]),
    }
    ports = {"heald": heald_port, "naive": naive_port}
    try:
        for name, process in servers.items():
            wait_listening(ports[name], process)
        results = run_cells(state, servers, ports, args)
    finally:
        for process in servers.values():
            process.send_signal(signal.SIGTERM)
        for process in servers.values():
            process.wait(timeout=60)
    report(results, args, len(((state / "retrains").read_text().split()) if (state / "retrains").exists() else []))


Cell = tuple[int, int, str]  # clients, rows per request, server (heald, heald+retrain, naive)


def run_cells(
    state: Path, servers: dict[str, subprocess.Popen[bytes]], ports: dict[str, int], args: argparse.Namespace
) -> dict[Cell, list[Measured]]:
    frame = dataset(200, 7).drop(columns=["y"])
    payloads = {n: frame.head(n).to_dict(orient="records") for n in (1, 100)}
    results: dict[Cell, list[Measured]] = {}
    for r in range(args.rounds):
        for clients in (1, 32):
            for n in (1, 100):
                order = ["heald", "naive"] if r % 2 == 0 else ["naive", "heald"]
                for name in order:
                    m = load(ports[name], servers[name].pid, clients, payloads[n], args.seconds)
                    results.setdefault((clients, n, name), []).append(m)
                    print(line(r, clients, n, name, m), flush=True)
        (state / "retrain.on").write_text("1")
        wait_for_retrain(state)
        for clients in (1, 32):
            for n in (1, 100):
                m = load(ports["heald"], servers["heald"].pid, clients, payloads[n], args.seconds)
                results.setdefault((clients, n, "heald+retrain"), []).append(m)
                print(line(r, clients, n, "heald+retrain", m), flush=True)
        (state / "retrain.on").unlink()
        wait_until_idle(state)
    return results


def wait_for_retrain(state: Path) -> None:
    """Give the first retrain time to reach its fit (it reads the batch first)."""
    time.sleep(2.0)


def wait_until_idle(state: Path, timeout: float = 600) -> None:
    """Let the last retrain finish: the next quiet cells must not run beside it."""
    deadline = time.monotonic() + timeout
    while (state / "busy").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the retrain did not finish within {timeout} s")
        time.sleep(0.2)
    time.sleep(1)


def line(r: int, clients: int, n: int, name: str, m: Measured) -> str:
    return (
        f"round {r} {clients:>2} clients {n:>3} rows {name:>14}: {m.rps:8.1f} req/s "
        f"p50 {m.pct(50):7.1f} ms p99 {m.pct(99):7.1f} ms"
    )


def merged(ms: list[Measured]) -> Measured:
    return Measured(
        requests=sum(m.requests for m in ms),
        seconds=sum(m.seconds for m in ms),
        latencies=[x for m in ms for x in m.latencies],
        cpu=sum(m.cpu for m in ms),
        errors=sum(m.errors for m in ms),
    )


def report(results: dict[Cell, list[Measured]], args: argparse.Namespace, retrains: int) -> None:
    print()
    print(f"executor {args.executor}, {args.rounds} rounds x {args.seconds:g} s per cell, {retrains} retrains finished")
    print(f"load: {os.getloadavg()}")
    print()
    print("| clients | rows/request | server | req/s | p50 ms | p99 ms | CPU ms/request | errors |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for (clients, n, name), ms in sorted(results.items()):
        m = merged(ms)
        cpu = m.cpu / m.requests * 1000 if m.requests else float("nan")
        print(
            f"| {clients} | {n} | {name} | {m.rps:.1f} | {m.pct(50):.1f} | {m.pct(99):.1f} | {cpu:.2f} | {m.errors} |"
        )
    print()
    for clients in (1, 32):
        for n in (1, 100):
            h, p, r = (merged(results[(clients, n, s)]) for s in ("heald", "naive", "heald+retrain"))
            print(
                f"{clients:>2} clients x {n:>3} rows: heald/naive req/s {h.rps / p.rps:.2f}x, p99 heald/naive "
                f"{h.pct(99) / p.pct(99):.2f}x, throughput drop during a retrain {1 - r.rps / h.rps:+.0%}"
            )
    one, many = merged(results[(32, 1, "heald")]), merged(results[(32, 1, "naive")])
    single_h, single_p = merged(results[(1, 1, "heald")]), merged(results[(1, 1, "naive")])
    retrain = merged(results[(32, 1, "heald+retrain")])
    print()
    print(f"must show: 32 clients x 1 row, heald >= 5x naive req/s: {one.rps / many.rps:.2f}x")
    print(f"must show: 1 client, heald p99 <= 1.2x naive: {single_h.pct(99) / single_p.pct(99):.2f}x")
    print(f"must show: drop while a retrain runs <= 15 % (32 x 1): {1 - retrain.rps / one.rps:.0%}")


if __name__ == "__main__":
    main()
