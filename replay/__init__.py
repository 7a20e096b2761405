"""`sbp replay`: the operators' tools for consumer groups (brief §10).

- `reset_plan`, `lag`: pure rules and data (where a reset moves each partition, how
  far a group trails), tested directly.
- `operator_auth`: the caller must hold an operator token (the RBAC SDK decides).
- `kafka_offsets`: the only module here that talks to Kafka, as the admin principal.
- `operator_log`: the append-only record of every executed reset, in PostgreSQL.
- `cli`: the typer commands and their output; `exit_codes`: what each exit means.
"""
