"""What an operator watches Custos with (docs/OBSERVABILITY.md): Prometheus metrics at
`GET /metrics` and one structured log line per request.

- metrics.py: the per-process counters, histogram and gauges, and the few calls the request
  path makes to them (an increment, an observation: nothing per field).
- collectors.py: the gauges read from the database at scrape time (outbox, rights requests,
  decision log, retention), right whichever process is scraped.
- endpoint.py: `GET /metrics`, protected by a bearer token or, without one, loopback only.
- request_log.py: the request id, the bounded operation label, the outcome, and the request
  line, written once per request by the outer middleware (api/http_guard.py).
- logging_setup.py: structlog's formatter on the standard library's loggers (uvicorn's and
  Custos's), as JSON or text (`CUSTOS_LOG_FORMAT`)."""
