"""Test and benchmark tooling for breadth_assets: not used by the product, never imported by it.

What the tests (`breadth_assets_tests`) and the benchmarks (`benchmarks/`) share:

- `fake_upstox`: FakeUpstox, a test fake of Upstox's v3 historical-candle API, with its
  instruments master writer and the request-window count that checks rate limits;
- `universe`: `write_demo_universe`, a demo-market universe file;
- `servers`: a fresh PostgreSQL database or an emptied Redis database to run against.
"""

from breadth_assets_testing.universe import write_demo_universe

__all__ = ["write_demo_universe"]
