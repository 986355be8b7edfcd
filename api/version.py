"""The version of Custos that is running: the installed package's, as `custos --version`,
`/healthz` and the metrics report it (one number, set in pyproject.toml)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("custos")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"
