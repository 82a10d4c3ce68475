"""Load test of the web UI: N users press Generate at the same moment.

Starts `app.py` in its own process (a tiny random model unless --model), sends --requests concurrent /generate calls,
each from its own `gradio_client.Client`, and prints how many completed, how many were told the server is busy
(Gradio's "Queue is full"), latency percentiles of the completed ones, and the server's memory (resident set at
idle, and its peak: VmHWM from /proc). Not run in CI.

    python -m benchmarks.app_load                     # 20 requests, tiny model, queue of 8
    python -m benchmarks.app_load --model PATH --resolution 512 --max-queue 4
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model(folder: Path) -> Path:
    """A tiny random pipeline with a student UNet, laid out like the default model."""
    from stablematerials.tiny import tiny_pipeline, tiny_unet

    tiny_pipeline(seed=0).save_pretrained(folder)
    tiny_unet(seed=1, student=True).save_pretrained(folder / "unet_lcm")
    return folder


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def wait_until_up(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with code {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer at {url} within {timeout:.0f} s")


def one_user(url: str, k: int, args: argparse.Namespace, start: threading.Event, results: list) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    start.wait()
    t0 = time.perf_counter()
    try:
        client.predict(prompt=f"weathered stone wall {k}", resolution=str(args.resolution), steps=args.steps,
                       api_name="/generate")  # fmt: skip
        results.append(("completed", time.perf_counter() - t0, ""))
    except Exception as e:  # noqa: BLE001 - every outcome is counted
        kind = "busy" if "queue is full" in str(e).lower() else "error"
        results.append((kind, time.perf_counter() - t0, f"{type(e).__name__}: {e}"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="pipeline folder (default: a tiny random model)")
    p.add_argument("--requests", type=int, default=20, help="concurrent users (default 20)")
    p.add_argument("--max-queue", type=int, default=8, help="the app's --max-queue (default 8)")
    p.add_argument("--resolution", type=int, default=64, help="pixels per side (default 64)")
    p.add_argument("--steps", type=int, default=4, help="denoising steps (default 4)")
    args = p.parse_args(argv)
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")

    with tempfile.TemporaryDirectory(prefix="app-load-") as tmp:
        model = Path(args.model) if args.model else tiny_model(Path(tmp) / "tiny")
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        cmd = [sys.executable, str(REPO / "app.py"), "--model", str(model), "--port", str(port),
               "--max-queue", str(args.max_queue), "--max-size", str(max(args.resolution, 64))]  # fmt: skip
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        try:
            wait_until_up(url, server, timeout=180)
            from gradio_client import Client

            Client(url, verbose=False, download_files=False).predict(
                prompt="warm-up", resolution=str(args.resolution), steps=args.steps, api_name="/generate"
            )  # loads the model, so the figures are about serving, not loading
            idle = memory_kib(server.pid)
            results: list = []
            start = threading.Event()
            users = [threading.Thread(target=one_user, args=(url, k, args, start, results)) for k in range(args.requests)]
            for u in users:
                u.start()
            time.sleep(2.0)  # every client has connected and fetched the page config
            t0 = time.perf_counter()
            start.set()
            for u in users:
                u.join()
            wall = time.perf_counter() - t0
            after = memory_kib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    counts = {kind: sum(1 for r in results if r[0] == kind) for kind in ("completed", "busy", "error")}
    done = np.array([r[1] for r in results if r[0] == "completed"])
    busy = np.array([r[1] for r in results if r[0] == "busy"])
    print(f"app load test: {args.requests} concurrent requests, queue {args.max_queue}, "
          f"{args.resolution} px, {args.steps} steps, model {'tiny (random)' if not args.model else args.model}")  # fmt: skip
    print(f"completed {counts['completed']}  busy {counts['busy']}  other errors {counts['error']}  "
          f"(all answered in {wall:.1f} s)")  # fmt: skip
    if done.size:
        p50, p90, p99 = np.percentile(done, [50, 90, 99])
        print(f"completed latency  p50 {p50:.2f} s  p90 {p90:.2f} s  p99 {p99:.2f} s  max {done.max():.2f} s")
    if busy.size:
        print(f"busy answer latency  max {busy.max():.3f} s")
    print(f"server memory  idle (model loaded) {idle['VmRSS'] / 1024:.0f} MiB  after {after['VmRSS'] / 1024:.0f} MiB  "
          f"peak {after['VmHWM'] / 1024:.0f} MiB")  # fmt: skip
    for kind, _, message in results:
        if kind == "error":
            print(f"error: {message[:300]}")
    return 0 if counts["error"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
