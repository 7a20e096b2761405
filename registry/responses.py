"""The registry's JSON response, with Confluent's media type."""

from __future__ import annotations

from starlette.responses import JSONResponse

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryResponse(JSONResponse):
    media_type = MEDIA_TYPE
