"""The registry's bounds on untrusted input, in one place (pure constants).

Every request body, and every schema inside one, is checked against these
before anything is stored. Each bound sits far above what a real Avro schema
needs and far below what would let one request hurt the process; the reasoning
is beside each, and docs/registry-limits.md lists them with their error codes.
"""

from __future__ import annotations

# A schema registration is usually a few KiB; the widest generated schemas seen
# in practice stay in the low hundreds of KiB. Confluent's registry keeps each
# schema as one Kafka record, which a default broker caps at about 1 MB, so
# 1 MiB refuses nothing Confluent would keep. Parsed, a schema costs up to about
# 25x its text in Python objects, so this also bounds one request's memory to
# tens of MiB (a 200 MB body once took the process to 672 MB).
MAX_BODY_BYTES = 1 << 20

# JSON nesting, counted in objects and arrays. A record nested in an optional
# field costs 4 levels, so 100 allows about 25 nested optional records, deeper
# than any real schema. The parsers after the JSON one (avro, fastavro, the
# compatibility checker, our normalizer) recurse per level; nested arrays, the
# costliest, take about 3 Python frames a level and hit the recursion limit near
# 330 levels, so 100 leaves room for the server's own stack.
MAX_JSON_DEPTH = 100

# The largest finite double has 309 integer digits, so no Avro value (int, long,
# float, double, fixed size, decimal precision) needs a longer integer literal.
# Python refuses to convert over 4300 digits with a plain ValueError, and
# huge ints make every later int-to-text conversion slow.
MAX_INT_DIGITS = 309

# Names, namespaces, aliases, enum symbols and type references. Avro sets no
# bound; this one exists because parsers quote these strings in error messages,
# and the avro package repeats a nested error's message at every enclosing level.
MAX_NAME_CHARS = 1024

# Error messages quote the input (a bad default, an unknown field); past this
# they are cut, so an error body stays small whatever the request held.
MAX_MESSAGE_CHARS = 4096

# Parsed schemas are cached for compatibility checks, which re-read a subject's
# whole history. The cache is bounded by the total length of the cached schema
# texts, not by count: 512 entries of 1 MiB schemas would hold gigabytes. At
# about 25x, 2 Mi characters of text stay under about 50 MiB of parsed objects
# while holding hundreds of schemas of typical size.
SCHEMA_CACHE_CHARS = 2 << 20
SCHEMA_CACHE_ENTRIES = 512
