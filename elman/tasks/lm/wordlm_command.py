"""The command-line adapter of the wordlm task: ``elman train wordlm`` and how a word model
answers the shared commands (see ``elman.tasks.lm.command``)."""

from __future__ import annotations

import argparse

from elman.tasks.lm.command import WORDLM_HANDLERS as HANDLERS
from elman.tasks.lm.command import add_wordlm_parser


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    add_wordlm_parser(train)


__all__ = ["HANDLERS", "add_parsers"]
