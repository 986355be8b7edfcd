"""Input hygiene at the edge: every String and ID argument of an operation is checked once,
before any resolver runs (`input_errors`, called by api/pipeline.py); the rules per
argument are in `registry`."""

from api.hygiene.check import input_errors

__all__ = ["input_errors"]
