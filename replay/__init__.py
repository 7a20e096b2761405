"""`sbp replay`: the operators' tools for consumer groups and the DLQ (brief §10).

- Pure rules and data, tested directly: `reset_plan`, `lag` (offsets), `dead_letters`
  (letters and their filters), `dlq_summary`, `reprocess_plan` (verdicts, re-drive
  headers), `redrive_runs` (the ledger's runs), `redrive_range` (range bounds).
- `operator_auth`: the caller must hold an operator token (the RBAC SDK decides).
- Kafka: `kafka_offsets` (groups and offsets, as the admin principal) and
  `kafka_records` (reading records with assigned partitions, producing re-drives as
  the service allowed to write the topic); `dlq_reader` reads and decodes letters.
- PostgreSQL: `operator_log` (the append-only record of every executed change) and
  `redrive_ledger` (which letters were re-driven).
- `cli`, `dlq_cli`, `redrive_cli`: the typer commands (`cli_common`: what they share);
  `render`, `dlq_render`: their output; `exit_codes`: what each exit means.
"""
