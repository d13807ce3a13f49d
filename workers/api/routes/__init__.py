"""The API's routes, one module per resource; each exposes ``router(settings) -> APIRouter``
so limits from the settings (page size, query length) appear in the OpenAPI schema.

These modules do not use ``from __future__ import annotations``: FastAPI evaluates the
parameter annotations of the route functions, which refer to the settings of the enclosing
``router()`` call.
"""
