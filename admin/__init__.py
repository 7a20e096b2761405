"""The tenant and building service: the admin API, its PostgreSQL store and the
outbox relay that publishes every change to the compacted config.* topics."""
