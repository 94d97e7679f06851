"""CPU cost of each stage of the server's MQTT ingest path, in-process on one thread (no sockets, no fsync).

Complements ``bench/mqtt_bench.py``: the payloads are the load generator's, the stages are the server's
(codec parse of MQTT 3.1.1 and 5, formatter through the pluggy hook and directly, ``format_columns`` (rows and
tablets), ``Ingest.rows``, the whole ``Ingestor.ingest`` with ``wal_mode=DISABLE``, which formats into tablets
when no iotdb_before_write hook is registered). Best of ``--rounds``; run from the project root::

    IOTDB_DISABLE_PLUGINS=bounds python -m bench.mqtt_stages [--rounds 5]

(``bounds`` is the example plugin's write hook, when installed: with it the ingest path formats rows.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mqtt_loadgen import SHAPES
from iotdb_core.bootstrap import configure, open_engine
from iotdb_core.deadletter import DeadLetterLog
from iotdb_core.formatter import FormatContext
from iotdb_core.metrics import ServiceCounters
from iotdb_mqtt.codec import PacketReader, encode
from iotdb_mqtt.ingest import InboundPublish, Ingestor

#: (messages per round, messages per ingest batch) of each shape.
SIZES = {"single": (20_000, 100), "batch": (200, 10)}


def best(rounds: int, run: Callable[[int], None]) -> float:
    """Fastest of ``rounds`` calls of ``run(round)``, in seconds."""
    times = []
    for index in range(rounds):
        started = time.perf_counter()
        run(index)
        times.append(time.perf_counter() - started)
    return min(times)


def measure(shape_name: str, rounds: int, workdir: Path) -> dict[str, float]:
    count, batch = SIZES[shape_name]
    runtime = configure(None, overrides={"data_dir": str(workdir / shape_name), "wal_mode": "DISABLE"})
    engine = open_engine(runtime)
    try:
        ingestor = Ingestor(runtime.plugins, engine, DeadLetterLog(workdir / shape_name, 1 << 20), ServiceCounters())
        context = FormatContext(client_id="stages")
        shape_cls = SHAPES[shape_name]
        # Round r writes device d<r> (and d<100+r> for the tablet path), so every write is new data.
        streams = [b"".join(shape_cls(r).packet(i % 65_535 + 1, i) for i in range(count)) for r in range(rounds)]
        publishes = [[InboundPublish(p.topic, p.payload, 1, p.packet_id)
                      for p in PacketReader(protocol_level=4).feed(stream)] for stream in streams]
        streams_v5 = [b"".join(encode(packet, 5) for packet in PacketReader(protocol_level=4).feed(stream))
                      for stream in streams]
        hook = runtime.plugins.hook.iotdb_format_payload
        direct = runtime.formatter.format
        columns = runtime.formatter.format_columns
        rows = [[row for p in pubs for row in direct(p.topic, p.payload, context)] for pubs in publishes]
        out = {
            "parse": best(rounds, lambda r: PacketReader(protocol_level=4).feed(streams[r])),
            "parse (MQTT 5)": best(rounds, lambda r: PacketReader(protocol_level=5).feed(streams_v5[r])),
            "format via hook": best(rounds, lambda r: [hook(topic=p.topic, payload=p.payload, context=context)
                                                       for p in publishes[r]]),
            "format direct": best(rounds, lambda r: [direct(p.topic, p.payload, context) for p in publishes[r]]),
            "format_columns direct": best(rounds, lambda r: [columns(p.topic, p.payload, context)
                                                             for p in publishes[r]]),
            "Ingest.rows": best(rounds, lambda r: engine.state.ingest.rows(rows[r])),
            "Ingestor.ingest": best(rounds, lambda r: [ingestor.ingest(context, publishes[r][i:i + batch])
                                                       for i in range(0, count, batch)]),
        }
        out["(before_write hooks registered)"] = len(runtime.plugins.hook.iotdb_before_write.get_hookimpls())
        return {k: (v if k.startswith("(") else v / count * 1e6) for k, v in out.items()}
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-stages-"))
    try:
        for shape_name in SHAPES:
            points = SHAPES[shape_name].points_per_message
            print(f"{shape_name} payload ({points} points/message), microseconds per message (best of {args.rounds}):")
            for stage, value in measure(shape_name, args.rounds, workdir).items():
                if stage.startswith("("):
                    print(f"  {stage}: {value}")
                else:
                    print(f"  {stage:28s} {value:9.2f} us  = {1e6 / value:12,.0f} msgs/s "
                          f"{points * 1e6 / value:14,.0f} points/s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
