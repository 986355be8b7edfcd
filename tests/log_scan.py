"""A scan of everything the server side logged during the test run, at the level a server
logs in production (INFO and above): no raw IP address, email address, phone number, token
or password may be in it. Loggers of what is not Custos are left out: the test client's
(httpx, httpcore log the URLs the tests request) and the test SMTP relay's (aiosmtpd's
`mail.log` logs its peers and envelopes, as any mail server does).

A finding fails the run at its end, with the logger and the kind of value found (not the
value), so a new log line that leaks personal data cannot land unnoticed."""

from __future__ import annotations

import logging
import re

import pytest

NOT_OURS = ("httpx", "httpcore", "asyncio", "hypothesis", "mail.log")
PASSWORDS = ("correct horse battery staple", "served horse battery staple")
_PATTERNS = {
    "email address": re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),
    "IP address": re.compile(
        r"(?<![\d.])(\d{1,3}\.){3}\d{1,3}(?![\d./])|\b[0-9a-f]{1,4}(:[0-9a-f]{1,4}){7}\b"
    ),
    "phone number": re.compile(r"\+\d{2}[\d ]{7,}"),
    "token": re.compile(r"(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])[A-Za-z0-9_-]{40,}"),
}


class LogScan(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.findings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(NOT_OURS):
            return
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        kinds = [kind for kind, pattern in _PATTERNS.items() if pattern.search(text)]
        kinds += ["password" for password in PASSWORDS if password in text]
        for kind in kinds:
            self.findings.append(f"{record.name} ({record.levelname}): a {kind}")


SCAN = LogScan()


def install(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(SCAN)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def report(session: pytest.Session) -> None:
    if not SCAN.findings:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = sorted(set(SCAN.findings))
    message = "personal data or secrets in the server log:\n  " + "\n  ".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
