"""Live topic view benchmark: what an open view costs the broker's routing, and what a stuck one costs.

A real ``iotdb serve`` subprocess (routing only: ``mqtt_ingest_topics`` names another topic, so nothing is
stored) routes --messages QoS 1 messages of --size bytes from ``mosquitto_pub -l`` to ``mosquitto_sub``, timed
from the first publish until the subscriber has them all, in three set-ups taken in turn, --repeat times each:

  none     no live view open;
  reading  one live view on the same filter, read as fast as it comes (http.client on a thread);
  stuck    one live view that is never read after its first line (a browser that froze).

The rates are compared only as ratios to ``none`` of the same run. For the views, the messages they got and
dropped are reported.

Usage: python bench/topics_bench.py [--messages N] [--size BYTES] [--repeat N] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from iotdb_core.testing.server import ServerProcess  # noqa: E402

AUTH = "Basic " + base64.b64encode(b"root:root").decode()
FILTER = "bench/#"


class View:
    """One live view of FILTER, drained on a thread once :meth:`read` is called, counting what it got."""

    def __init__(self, server: ServerProcess) -> None:
        self.connection = http.client.HTTPConnection(server.rest_host, server.rest_port, timeout=120)
        self.connection.request("GET", "/console/api/topics/stream?filter=bench/%23", headers={"Authorization": AUTH})
        self.response = self.connection.getresponse()
        assert self.response.status == 200, self.response.read()
        self.response.readline()  # ": watching"
        self.messages = self.received = self.dropped = 0
        self._reader = threading.Thread(target=self._drain, daemon=True)

    def read(self) -> None:
        self._reader.start()

    def wait_for(self, received: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.received < received and time.monotonic() < deadline:
            time.sleep(0.1)

    def _drain(self) -> None:
        try:
            for line in self.response:
                if line.startswith(b"data:"):
                    body = json.loads(line[5:])
                    if "messages" in body:
                        self.messages += len(body["messages"])
                        self.received, self.dropped = body["received"], body["dropped"]
        except (OSError, ValueError):
            pass  # shut down by close()

    def close(self) -> None:
        if self.connection.sock is not None:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(10)
        self.connection.close()


def route_once(server: ServerProcess, messages: int, size: int) -> float:
    """Seconds from the first publish until mosquitto_sub has all ``messages``."""
    common = ["-h", server.host, "-p", str(server.port), "-u", "root", "-P", "root", "-q", "1"]
    subscriber = subprocess.Popen(["mosquitto_sub", *common, "-t", FILTER, "-C", str(messages)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # subscribed
    lines = (("x" * (size - 1)) + "\n") * messages
    began = time.perf_counter()
    subprocess.run(["mosquitto_pub", *common, "-t", "bench/load", "-l"], input=lines.encode(), check=True,
                   timeout=300)
    subscriber.wait(timeout=300)
    elapsed = time.perf_counter() - began
    assert subscriber.returncode == 0, subscriber.stderr.read() if subscriber.stderr else ""
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"messages": args.messages, "size": args.size}
    times: dict[str, list[float]] = {"none": [], "reading": [], "stuck": []}
    views: dict[str, list[tuple[int, int, int]]] = {"reading": [], "stuck": []}
    properties = {"mqtt_ingest_topics": "not/routed/here", "mqtt_max_queued_messages": 10 * args.messages,
                  "mqtt_max_queued_bytes": 64 * 1024 * 1024}
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp), properties) as server:
        route_once(server, 1000, args.size)  # warm up
        for _ in range(args.repeat):
            for mode in ("none", "reading", "stuck"):
                view = None if mode == "none" else View(server)
                if view is not None and mode == "reading":
                    view.read()
                times[mode].append(route_once(server, args.messages, args.size))
                if view is not None:
                    if mode == "stuck":
                        view.read()  # only now: what it kept and what it dropped
                    view.wait_for(args.messages)
                    views[mode].append((view.messages, view.received, view.dropped))
                    view.close()
    base = statistics.median(times["none"])
    for mode, spans in times.items():
        median = statistics.median(spans)
        results[f"{mode}_msgs_per_s"] = round(args.messages / median)
        results[f"{mode}_ratio"] = round(base / median, 3)
    for mode, seen in views.items():
        results[f"{mode}_view_got"] = [got for got, _received, _dropped in seen]
        results[f"{mode}_view_dropped"] = [dropped for _got, _received, dropped in seen]
    for key, value in results.items():
        print(f"{key:24} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
