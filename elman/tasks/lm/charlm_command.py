"""The command-line adapter of the charlm task: ``elman train charlm`` and how a character
model answers the shared commands (see ``elman.tasks.lm.command``)."""

from __future__ import annotations

import argparse

from elman.tasks.lm.command import CHARLM_HANDLERS as HANDLERS
from elman.tasks.lm.command import add_charlm_parser


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    add_charlm_parser(train)


__all__ = ["HANDLERS", "add_parsers"]
