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


def time_round(tree: SubscriptionTree, topics: list[str]) -> tuple[float, int]:
    """Seconds to match every topic once, and the deliveries made."""
    deliveries = 0
    started = time.perf_counter()
    for topic in topics:
        deliveries += len(tree.match(topic, "publisher"))
    return time.perf_counter() - started, deliveries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--publishes", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    cases = []
    for size in sizes:
        tree = build(size)
        spread = max(1, (size - 2) // len(SHAPES))
        rng = random.Random(size)
        cases.append((tree, [f"fleet/{rng.randrange(spread)}/dev/temp" for _ in range(args.publishes)]))
    gc.collect()  # long-lived trees sit in the oldest generation, as in a running server
    best = [float("inf")] * len(cases)
    deliveries = [0] * len(cases)
    # Rounds go through the sizes in turn, so a change in the machine's load hits every size alike.
    for round_index in range(args.rounds + 1):  # the first round warms up and is not counted
        for index, (tree, topics) in enumerate(cases):
            seconds, deliveries[index] = time_round(tree, topics)
            if round_index:
                best[index] = min(best[index], seconds)
    print("| wildcard subscriptions | match time per publish | deliveries per publish | vs. smallest |")
    print("| ---: | ---: | ---: | ---: |")
    first = best[0] / args.publishes * 1e6
    for (tree, _), seconds, delivered in zip(cases, best, deliveries, strict=True):
        micros = seconds / args.publishes * 1e6
        print(f"| {len(tree):,} | {micros:.2f} us | {delivered / args.publishes:.1f} | {micros / first:.2f}x |")


if __name__ == "__main__":
    main()
