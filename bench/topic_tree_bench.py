"""Matching time per publish of the subscription tree as the number of wildcard subscriptions grows.

For each size N, N subscriptions of 1,000 clients are made, every one with a wildcard, in four
shapes: ``fleet/{i}/+/temp``, ``fleet/{i}/#``, ``+/{i}/alarm`` and ``$share/g/fleet/+/{i}/set``,
plus two that match every publish (``fleet/#`` and ``+/+/+/temp``). Publishes go to
``fleet/{j}/dev/temp`` for random ``j``, so each publish matches a few subscriptions whatever N is:
the figure shows what the number of subscriptions costs, not what delivering more copies costs.
The time is the best of several rounds of ``SubscriptionTree.match``; the issue's bar is that it
stays within 2x from 10 to 10,000 subscriptions.

    python bench/topic_tree_bench.py [--sizes 10,100,1000,10000] [--publishes 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from iotdb_mqtt.broker.tree import Subscription, SubscriptionOptions, SubscriptionTree

SHAPES = ("fleet/{i}/+/temp", "fleet/{i}/#", "+/{i}/alarm", "$share/g/fleet/+/{i}/set")


def build(size: int) -> SubscriptionTree:
    tree = SubscriptionTree()
    options = SubscriptionOptions(qos=1)
    tree.subscribe(Subscription("watch-all", "fleet/#", options))
    tree.subscribe(Subscription("watch-temp", "+/+/+/temp", options))
    for index in range(size - 2):
        shape = SHAPES[index % len(SHAPES)]
        tree.subscribe(Subscription(f"client-{index % 1000}", shape.format(i=index // len(SHAPES)), options))
    return tree


def measure(tree: SubscriptionTree, topics: list[str], rounds: int) -> tuple[float, float]:
    """Best time per publish in microseconds, and deliveries per publish."""
    best = float("inf")
    deliveries = 0
    for round_index in range(rounds + 1):  # the first round warms up and is not counted
        deliveries = 0
        started = time.perf_counter()
        for topic in topics:
            deliveries += len(tree.match(topic, "publisher"))
        if round_index:
            best = min(best, time.perf_counter() - started)
    return best / len(topics) * 1e6, deliveries / len(topics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--publishes", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print("| wildcard subscriptions | match time per publish | deliveries per publish | vs. smallest |")
    print("| ---: | ---: | ---: | ---: |")
    first: float | None = None
    for size in sizes:
        tree = build(size)
        gc.collect()  # a long-lived tree sits in the oldest generation, as in a running server
        spread = max(1, (size - 2) // len(SHAPES))
        rng = random.Random(size)
        topics = [f"fleet/{rng.randrange(spread)}/dev/temp" for _ in range(args.publishes)]
        micros, per_publish = measure(tree, topics, args.rounds)
        first = micros if first is None else first
        print(f"| {len(tree):,} | {micros:.2f} us | {per_publish:.1f} | {micros / first:.2f}x |")


if __name__ == "__main__":
    main()
