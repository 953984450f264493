"""``python -m breadth_assets_testing.fake_upstox --token T``: FakeUpstox in its own process."""

from breadth_assets_testing.fake_upstox.cli import main

raise SystemExit(main())
