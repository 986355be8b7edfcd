"""Input hygiene at the edge: every String and ID argument of an operation is checked once,
before any resolver runs (see `InputHygiene`); the rules per argument are in `registry`."""

from api.hygiene.extension import InputHygiene

__all__ = ["InputHygiene"]
