"""The verifiable log's configuration, from the settings (docs/OPERATIONS.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from api.settings import Settings
from authz.checkpoints import LogConfig


def log_config(settings: Settings) -> LogConfig:
    return LogConfig(
        origin=settings.effective_audit_log_origin,
        key_dir=Path(settings.audit_key_dir),
        publish_dir=Path(settings.audit_checkpoint_dir) if settings.audit_checkpoint_dir else None,
        every=timedelta(seconds=settings.audit_checkpoint_seconds),
    )
