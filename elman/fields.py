"""Configuration written once: each config field's help lives beside it, as dataclass field
metadata, and the command line and the docs are generated from it (``elman.tasks.options``).

    @dataclass(frozen=True, kw_only=True)
    class Config:
        hidden: int = option(256, "hidden units per layer")
        seed: int = 0                   # no help: not a command-line option
"""

from __future__ import annotations

from dataclasses import MISSING, Field, field, fields
from typing import Any


def option(default: Any = MISSING, help: str = "", **meta: Any) -> Any:
    """A dataclass field that is also a command-line option documented by ``help``;
    ``meta`` may add ``choices``. (Immutable defaults only: configs are frozen.)"""
    return field(default=default, metadata={"help": help, **meta})


def documented(cls: type) -> list[Field]:
    """The fields of dataclass ``cls`` that carry help (the ones the CLI offers)."""
    return [f for f in fields(cls) if f.metadata.get("help")]


def help_of(cls: type) -> dict[str, str]:
    """Field name -> help text, for every documented field of ``cls``."""
    return {f.name: f.metadata["help"] for f in documented(cls)}


__all__ = ["documented", "help_of", "option"]
