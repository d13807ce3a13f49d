"""The parsed settings as STREAMCRAWL_* environment variables, for the processes the stack starts.

Dagster and the supervisord workers parse their own settings from the environment; handing
them the values ``streamcrawl up`` parsed guarantees every process sees the same ports,
credentials and data dir (made absolute, since workers run from the checkout).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from workers.settings import Settings

__all__ = ["settings_env"]


def _render(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value.expanduser().resolve())
    if isinstance(value, dict | list | tuple):
        return json.dumps(value)
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """Every field of every settings group as ``{ENV_NAME: value}`` (unset optionals left out)."""
    env: dict[str, str] = {}
    for group_name in type(settings).model_fields:
        group = getattr(settings, group_name)
        if not isinstance(group, BaseSettings):
            continue
        prefix = str(type(group).model_config.get("env_prefix", ""))
        for field_name in type(group).model_fields:
            rendered = _render(getattr(group, field_name))
            if rendered is not None:
                env[f"{prefix}{field_name}".upper()] = rendered
    return env
