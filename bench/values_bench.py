"""Micro-benchmark of the value codec's hot path: encode + decode of a small object.

Run: python bench/values_bench.py [iterations]
"""

from __future__ import annotations

import sys
import time

from kvshim.values import decode_value, encode_value


def main(iterations: int = 100_000) -> None:
    """Time ``decode_value(encode_value({"i": i, "s": "x" * 100}))`` and print ops/s."""
    text = "x" * 100
    start = time.perf_counter()
    for i in range(iterations):
        decode_value(encode_value({"i": i, "s": text}))
    elapsed = time.perf_counter() - start
    print(
        f"encode+decode {{'i': i, 's': 'x'*100}}: {iterations / elapsed:,.0f} ops/s "
        f"({elapsed / iterations * 1e6:.2f} us/op)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
