"""Resource fields over the workers' settings: unset fields keep the environment's value."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic_settings import BaseSettings

__all__ = ["settings_with"]

S = TypeVar("S", bound=BaseSettings)


def settings_with(cls: type[S], fields: dict[str, Any]) -> S:
    """``cls`` parsed from the environment now (run time), with the non-None ``fields`` on top."""
    overrides: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    return cls(**overrides)
