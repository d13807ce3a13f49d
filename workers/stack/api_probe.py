"""`streamcrawl status`'s line for the read API: its address and what ``/readyz`` answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from workers.settings import ApiSettings
from workers.stack.ports import LOCALHOST

__all__ = ["ApiStatus", "api_status"]


@dataclass(frozen=True, slots=True)
class ApiStatus:
    address: str
    up: bool
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "address": self.address,
            "up": self.up,
            "ready": self.ready,
            "checks": dict(self.checks),
            "detail": self.detail,
        }


def api_status(api: ApiSettings, *, timeout_s: float = 5.0) -> ApiStatus:
    """Ask the API's ``/readyz`` (no key needed); ``up`` = it answered, ``ready`` = 200."""
    host = LOCALHOST if api.bind_host in ("0.0.0.0", "::", "") else api.bind_host
    address = f"http://{host}:{api.port}"
    try:
        with urllib.request.urlopen(f"{address}/readyz", timeout=timeout_s) as response:
            body = json.loads(response.read() or b"{}")
            return ApiStatus(address, True, True, dict(body.get("checks", {})))
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return ApiStatus(address, True, False, dict(body.get("checks", {})), f"readyz answered {exc.code}")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return ApiStatus(address, False, False, detail=f"not answering ({reason})")
