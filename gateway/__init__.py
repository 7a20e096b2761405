"""The gateway: a thin Starlette app that authenticates, validates and publishes.

It verifies the caller's access token, checks each request against the vote
contract, produces the accepted records to Kafka and answers only after the
broker has confirmed them. It also serves the buildings' SSE streams.
Business logic lives in the faust agents, not
here; the validation and policy rules the gateway applies are pure modules
(`clock_skew`, `vote_validation`, `batch_request`) that import no I/O library
and are tested directly.
"""
