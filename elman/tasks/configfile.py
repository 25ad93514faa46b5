"""``--config FILE``: the option values of an ``elman train TASK`` command read from a TOML,
JSON or YAML file, checked and converted the way argparse treats the same options given on
the command line; and ``write_config``, which writes such a file (TOML), e.g. ``elman tune``'s
best trial.

A file holds ``name = value`` pairs whose names are the command's options, spelled as on the
command line without the dashes or as their field names (``weight-dropout`` or
``weight_dropout``; classify's ``--train`` as ``train`` or ``train_file``). The tables
``[model]``, ``[train]`` and ``[data]`` only group: their keys are read as if at the top, so
any option may sit in any of them (or in none).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import numbers
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from elman.files import atomic_path

SECTIONS = ("model", "train", "data")
# options a file may not set, and why
REFUSED = {
    "out": "give --out on the command line (where a run goes is decided there, per run)",
    "overwrite": "pass --overwrite on the command line (replacing a run is decided there)",
    "config": "a config file cannot name another one",
    "help": "it is not an option a file can set",
}
EXPECTED = {"integer": "an integer", "number": "a number", "int": "an integer", "float": "a number"}


def read_config(path: str | Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The values ``path`` gives to ``parser``'s options, keyed by their ``dest`` and
    converted as from the command line (the option's ``type``, ``choices`` and ``nargs``),
    ready for ``parser.set_defaults``. Anything wrong is a one-line ``ValueError`` naming
    the file: an unreadable or malformed file, an unknown option (with the closest names),
    an option a file may not set, a value of the wrong type or not among the choices."""
    where = f"--config {path}"
    options = _options(parser)
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in _flatten(_load(Path(path), where), where).items():
        action = _action_for(key, options, where, parser.prog)
        if action.dest in values:
            raise ValueError(
                f"{where}: {action.dest} is given twice ({spelled[action.dest]!r} and {key!r})"
            )
        values[action.dest], spelled[action.dest] = _convert(action, value, f"{where}: {key}"), key
    return values


def _load(path: Path, where: str) -> Mapping:
    """The file's top-level table, read as its suffix says."""
    readers = {".toml": _toml, ".json": _json, ".yaml": _yaml, ".yml": _yaml}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"{where}: expected a .toml, .json, .yaml or .yml file, "
            f"got {path.suffix or 'no suffix'}"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file") from None
    except OSError as e:
        raise ValueError(f"{where}: cannot read it ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where}: not UTF-8 text (byte {e.start})") from None
    found = reader(text, where)
    if found is None:  # an empty YAML file
        return {}
    if not isinstance(found, Mapping):
        raise ValueError(
            f"{where}: expected a table of option names at the top, got a {type(found).__name__}"
        )
    return found


def _toml(text: str, where: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line L, column C)"
        raise ValueError(f"{where}: not valid TOML: {e}") from None


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON: {e}") from None


def _yaml(text: str, where: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ValueError(
            f"{where}: reading YAML needs PyYAML (pip install pyyaml); or write the file as "
            "TOML or JSON"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (at line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(
            f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}{at}"
        ) from None


def _flatten(table: Mapping, where: str) -> dict[str, Any]:
    """The pairs at the top and in the ``SECTIONS`` tables, as one mapping."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        inner = value.items() if key in SECTIONS and isinstance(value, Mapping) else [(key, value)]
        for name, v in inner:
            name = str(name)
            if name in flat:
                raise ValueError(f"{where}: {name!r} is given twice")
            flat[name] = v
    return flat


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every name a file may use for each of ``parser``'s actions: its dest and its long
    option string without dashes (not BooleanOptionalAction's ``--no-`` form)."""
    names = {action.dest: action for action in parser._actions}
    for action in parser._actions:  # a dest wins over another option's spelling
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs:
            names.setdefault(longs[0][2:].replace("-", "_"), action)
    return names


def _action_for(key: str, options: dict, where: str, command: str) -> argparse.Action:
    name = key.replace("-", "_")
    action = options.get(name)
    if action is None:
        settable = sorted({a.dest for a in options.values() if _settable(a)})
        close = difflib.get_close_matches(name, settable, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else f"see `{command} --help`"
        raise ValueError(f"{where}: {key!r} is not an option of `{command}`; {hint}")
    if action.dest in REFUSED:
        raise ValueError(f"{where}: {key!r} cannot be set in a config file: {REFUSED[action.dest]}")
    if not action.option_strings:
        raise ValueError(
            f"{where}: {key!r} is a positional argument of `{command}`: give it on the command line"
        )
    if not _settable(action):
        raise ValueError(f"{where}: {key!r} cannot be set in a config file")
    return action


def _flag(action: argparse.Action) -> bool:
    """An on/off option: --x/--no-x, or store_true / store_false."""
    return isinstance(action, argparse.BooleanOptionalAction) or (
        action.nargs == 0 and isinstance(action.const, bool)
    )


def _settable(action: argparse.Action) -> bool:
    storing = _flag(action) or action.nargs != 0  # not help, count or append_const
    return storing and bool(action.option_strings) and action.dest not in REFUSED


def _convert(action: argparse.Action, value: Any, where: str) -> Any:
    """``value`` as the option's parsed value: a bool for a flag, a list for nargs ``*``,
    ``+`` or N, else one value of its ``type``; within its ``choices``."""
    if _flag(action):
        if not isinstance(value, bool):
            raise ValueError(f"{where} = {value!r}: expected true or false")
        return value
    nargs = action.nargs
    if nargs not in ("*", "+") and not isinstance(nargs, int):
        return _scalar(action, value, where)
    if not isinstance(value, list):
        raise ValueError(f"{where} = {value!r}: expected a list")
    if (nargs == "+" and not value) or (isinstance(nargs, int) and len(value) != nargs):
        wanted = "at least one value" if nargs == "+" else f"{nargs} values"
        raise ValueError(f"{where} = {value!r}: expected a list of {wanted}")
    return [_scalar(action, v, where) for v in value]


def _scalar(action: argparse.Action, value: Any, where: str) -> Any:
    kind = action.type or str
    expected = "a string" if kind is str else EXPECTED.get(getattr(kind, "__name__", ""), "a value")
    usable = (str,) if kind is str else (str, int, float)
    if isinstance(value, bool) or not isinstance(value, usable):
        raise ValueError(f"{where} = {value!r}: expected {expected}")
    try:  # a number may come as a string (YAML reads 1e-3 as one): convert as argparse would
        converted = kind(str(value))
    except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
        raise ValueError(f"{where} = {value!r}: {e}") from None
    if action.choices is not None and converted not in action.choices:
        shown = ", ".join(map(str, action.choices))
        raise ValueError(f"{where} = {value!r}: expected one of {shown}")
    return converted


def write_config(path: str | Path, values: Mapping[str, Any], *, comment: str = "") -> Path:
    """Write ``values`` (option names to a bool, number, string or a list of those) as a TOML
    file that ``elman train TASK --config path`` reads back, atomically; ``comment`` lines
    go first as ``#`` comments. Returns the path."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"write_config: expected option names as keys, got {key!r}")
        why = REFUSED.get(key.replace("-", "_"))
        if why:
            raise ValueError(f"write_config: {key!r} cannot be set in a config file: {why}")
        lines.append(f"{_toml_key(key)} = {_toml_value(key, value)}")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_value(key: str, value: Any, inner: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        if not -(2**63) <= value < 2**63:  # TOML's integers are 64-bit
            raise ValueError(f"write_config: {key} = {value!r}: expected a 64-bit integer")
        return str(int(value))
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ValueError(f"write_config: {key} = {value!r}: expected a finite number")
        return repr(float(value))
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple) and not inner:
        return "[" + ", ".join(_toml_value(key, v, inner=True) for v in value) + "]"
    null = " (TOML has no null: leave the key out)" if value is None else ""
    raise TypeError(
        f"write_config: {key} = {value!r}: expected a bool, number, string or a list of "
        f"those, got {type(value).__name__}{null}"
    )


def _toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped."""
    short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for ch in text:
        if ch in short:
            out.append(short[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


__all__ = ["SECTIONS", "read_config", "write_config"]
