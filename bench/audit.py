"""Configuration audit benchmark: CMDB health of an estate of ``bench.engine`` (every CI, and one
service's closure), with the plain read of every CI as the baseline, in the same process.

    python -m bench.audit --size 100000

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse

from bench.engine import estate, median_ms
from servicegraph.api.python import ServiceGraph


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    args = parser.parse_args()
    sg = ServiceGraph(estate(args.size))
    sg.engine.refresh()  # built once, as a server or notebook holds it
    plain, cis = median_ms(lambda: sum(1 for _ in sg.store.iter_cis()), 3)
    took, result = median_ms(sg.health, 3)
    print(f"== {cis:,} records; health of {result.cis:,} live CIs: {took:,.0f} ms (median of 3), "
          f"{len(result.findings):,} findings, score {result.scores['score']}; reading every CI: "
          f"{plain:,.0f} ms ({took / plain:.1f}x)")  # fmt: skip
    service = next(i for i in sg.engine.ids if i.startswith("business-service-"))
    took, result = median_ms(lambda: sg.health(service=service), 3)
    print(f"health of {service}'s closure ({result.cis:,} CIs): {took:,.0f} ms")


if __name__ == "__main__":
    main()
