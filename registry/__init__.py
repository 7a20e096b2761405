"""The project's Config/Schema Registry: the Confluent Schema Registry REST subset
that `confluent_kafka.schema_registry` uses, for Avro, backed by PostgreSQL.

`canonical` and `compatibility` are pure (no I/O); `store` owns the SQL; `app`
and `routes` speak HTTP. Schema ids are global and stable: one id per distinct
schema, whatever subjects it is registered under.
"""
