"""Every log line in one format (`CUSTOS_LOG_FORMAT`): JSON, one object a line, or text for
a person at a terminal. structlog's ProcessorFormatter sits on the standard library's
handlers, so uvicorn's loggers, Custos's (`custos.*`) and any library's come out alike.

Two ways in:

- `uvicorn_log_config(settings, log_level)`: the dictConfig `custos serve` hands to uvicorn
  (`uvicorn.run(..., log_config=...)`), applied by uvicorn in every process it starts,
  before the first line;
- `install(settings)`, from `create_app`: when the app runs under a uvicorn that set up its
  own logging (`uvicorn api.app:create_app --factory`), its handlers get this formatter
  from then on. Elsewhere (tests, a script) it changes nothing.

What a line never holds is the loggers' business (no personal data in a message, see
tests/log_scan.py); this module adds the access log's fields from its arguments, which
api/logs.py has already redacted (the client's network, a secret path shortened)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.dev import ConsoleRenderer
from structlog.processors import JSONRenderer, TimeStamper, format_exc_info
from structlog.stdlib import ExtraAdder, ProcessorFormatter, add_log_level, add_logger_name
from structlog.typing import EventDict, Processor, WrappedLogger

from api.logs import RedactTokens
from api.observability.request_log import LOG_FIELDS
from api.settings import Settings

LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,  # uvicorn's TRACE
}


class _AccessFields:
    """uvicorn's access line, in JSON, as fields too: (client network, method, path, HTTP
    version, status), as api/logs.py's filter left them (in text the message says it all).
    Other records' arguments are in their message already, and go no further."""

    def __init__(self, *, add: bool) -> None:
        self.add = add

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        args = event.pop("positional_args", None)
        record = event.get("_record")
        access = self.add and record is not None and record.name == "uvicorn.access"
        if access and isinstance(args, tuple) and len(args) == 5:
            event["client"], event["method"], event["path"] = args[0], args[1], args[2]
            event["http_version"], event["status"] = args[3], args[4]
        return event


def _shared() -> list[Processor]:
    return [
        add_log_level,
        add_logger_name,
        TimeStamper(fmt="iso", utc=True),
    ]


class CustosFormatter(ProcessorFormatter):
    """structlog's formatter for the standard library, as Custos sets it up."""


def formatter(fmt: str = "text", **_: Any) -> logging.Formatter:
    """The formatter of every handler (`fmt`: json or text). Extra keyword arguments are
    ignored: uvicorn adds `use_colors` to the formatters it knows by name."""
    _configure_structlog()
    json = fmt == "json"
    tail: list[Processor] = (
        [format_exc_info, JSONRenderer()] if json else [ConsoleRenderer(colors=False)]
    )
    return CustosFormatter(
        foreign_pre_chain=[*_shared(), ExtraAdder(allow=LOG_FIELDS), _AccessFields(add=json)],
        pass_foreign_args=True,
        processors=[ProcessorFormatter.remove_processors_meta, *tail],
    )


def _configure_structlog() -> None:
    """Loggers from structlog itself (`structlog.get_logger`) go through the standard
    library too, and so through the same handlers."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared(),
            ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def uvicorn_log_config(settings: Settings, log_level: str = "info") -> dict[str, Any]:
    """The logging configuration `custos serve` passes to uvicorn: uvicorn's loggers, the
    app's (`custos`, at `log_level` like uvicorn's) and the root (warnings of libraries),
    all through one formatter; the access log to stdout as uvicorn has it, the rest to
    stderr; the access log's client and secret paths redacted (api/logs.py)."""
    level = LEVELS.get(log_level.lower(), logging.INFO)
    fmt = settings.effective_log_format
    factory = f"{__name__}.formatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": f"{RedactTokens.__module__}.{RedactTokens.__name__}"}},
        "formatters": {
            "default": {"()": factory, "fmt": fmt},
            "access": {"()": factory, "fmt": fmt},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {
                "handlers": ["access"],
                "level": level,
                "propagate": False,
                "filters": ["redact"],
            },
            "custos": {"level": level},
        },
        "root": {"handlers": ["default"], "level": logging.WARNING},
    }


def install(settings: Settings) -> None:
    """Under uvicorn (its loggers have handlers): `custos` logs at uvicorn's level (`custos
    serve --log-level warning` leaves out the request lines too, as the access log), and
    when uvicorn set up logging its own way (handlers that are not ours), they get this
    formatter, and the root logger (libraries' warnings) a handler to stderr the same way.
    Elsewhere (tests, a script) nothing changes."""
    uvicorn_handlers = [
        *logging.getLogger("uvicorn").handlers,
        *logging.getLogger("uvicorn.access").handlers,
    ]
    if not uvicorn_handlers:
        return
    logging.getLogger("custos").setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
    theirs = [h for h in uvicorn_handlers if not isinstance(h.formatter, CustosFormatter)]
    if not theirs:
        return
    fmt = settings.effective_log_format
    for handler in theirs:
        handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    if not root.handlers:
        root_handler = logging.StreamHandler(sys.stderr)
        root_handler.setFormatter(formatter(fmt))
        root.addHandler(root_handler)
