"""Avro schemas (schemas/avro/<subject>/vN.avsc) and their registration."""
