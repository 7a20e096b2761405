"""The live path in Redis: absolute comfort snapshots and per-building event streams."""
