"""Login throttling per account and per IP, stored in the database so that every process
sharing it sees the same counts. Keys are HMACs: no email or IP is stored."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from api.clock import Clock
from api.security.tokens import keyed_digest
from api.settings import Settings
from models import LoginFailure


class LoginThrottle:
    def __init__(self, *, settings: Settings, clock: Clock) -> None:
        self._secret = settings.secret_key.get_secret_value()
        self._window = timedelta(seconds=settings.login_window_seconds)
        self._limits = {
            "account": settings.login_max_failures_account,
            "ip": settings.login_max_failures_ip,
        }
        self._clock = clock

    def _keys(self, *, account: str, ip: str | None) -> list[tuple[str, str]]:
        keys = [("account", keyed_digest(self._secret, "throttle-account", account))]
        if ip:
            keys.append(("ip", keyed_digest(self._secret, "throttle-ip", ip)))
        return keys

    async def retry_after(self, *, account: str, ip: str | None) -> int | None:
        """Seconds to wait when either key has reached its limit within the window."""
        now = self._clock.now()
        waits: list[float] = []
        for scope, key in self._keys(account=account, ip=ip):
            limit = self._limits[scope]
            recent = (
                await LoginFailure.filter(scope=scope, key=key, at__gt=now - self._window)
                .order_by("-at")
                .limit(limit)
                .values_list("at", flat=True)
            )
            if len(recent) >= limit:
                oldest_counted: datetime = recent[limit - 1]  # type: ignore[assignment]
                waits.append((oldest_counted + self._window - now).total_seconds())
        return max(1, math.ceil(max(waits))) if waits else None

    async def record_failure(self, *, account: str, ip: str | None) -> None:
        now = self._clock.now()
        await LoginFailure.bulk_create(
            [LoginFailure(scope=s, key=k, at=now) for s, k in self._keys(account=account, ip=ip)]
        )
        await LoginFailure.filter(at__lt=now - self._window).delete()

    async def clear_account(self, *, account: str) -> None:
        scope, key = self._keys(account=account, ip=None)[0]
        await LoginFailure.filter(scope=scope, key=key).delete()
