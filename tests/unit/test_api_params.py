"""Query-parameter types of the API (workers/api/routes/params.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from workers.api.routes.params import IsoDatetime

_DATETIME = TypeAdapter(IsoDatetime | None)


@pytest.mark.parametrize("value", ["24", " 24 ", "-3", "1.5e9", ".5"])
def test_a_bare_number_is_not_a_date_time(value: str) -> None:
    # pydantic alone reads these as seconds since 1970; the schema says ISO 8601 (the API
    # fuzz test found `until=24` answered 200).
    with pytest.raises(ValidationError, match="ISO 8601"):
        _DATETIME.validate_python(value)


def test_iso_8601_and_none_still_pass() -> None:
    assert _DATETIME.validate_python("2026-01-31T12:00:00Z") == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert _DATETIME.validate_python(None) is None
