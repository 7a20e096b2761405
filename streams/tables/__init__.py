"""Table definitions' pure state logic: dedup verdicts, vote migration, comfort buckets."""
