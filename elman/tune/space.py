"""Search spaces for `elman tune`: which config fields a hyperparameter search varies, and how.

A space maps a field of the task's model config or of ``TrainConfig`` to a table; a task's
default space (``TaskSpec.space``) and a user's .toml/.json/.yaml file have one form:

    hidden = { type = "int", low = 64, high = 512, step = 64 }   # step: default 1
    lr = { type = "float", low = 1e-4, high = 1e-2, log = true }  # log: low > 0, no float step
    cell = { type = "categorical", choices = ["lstm", "gru"] }
    steps = { value = 2000 }                                      # fixed: every trial
    schedule = { type = "categorical", choices = ["cosine", "constant"] }
    min_lr = { type = "float", low = 0.01, high = 0.5, when = { schedule = "cosine" } }

(or one ``[name]`` table each). ``when`` names parameters declared above it, each with a value
or a list; a parameter whose ``when`` fails is never suggested (absent from ``trial.params``,
the config keeps its default). An int or float may add ``grid = [...]``, its values on a grid.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from elman.fields import documented
from elman.train.config import TrainConfig

KINDS = ("int", "float", "categorical", "fixed")
KEYS = {"categorical": ("choices",), "fixed": ("value",)}  # int and float: NUMERIC
NUMERIC = ("low", "high", "step", "log", "grid")
MAX_GRID = 10_000  # values one parameter may put on a grid
TRAIN_FIELDS = frozenset(f.name for f in fields(TrainConfig))
FORMATS = {".toml": "TOML", ".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}


def _number(v: object, integer: bool = False) -> bool:  # v == v: not NaN
    return isinstance(v, int if integer else int | float) and not isinstance(v, bool) and v == v


def _scalar(v: object) -> bool:  # what Optuna's categorical distributions hold
    return v is None or isinstance(v, bool | int | float | str)


def _same(a: object, b: object) -> bool:
    """Equal and both booleans or neither (so 1 never stands for true)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _show(v: object) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return f"{v:g}" if isinstance(v, float) else text


def _require(ok: object, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class Param:
    """One searched field: ``kind`` int or float (``low``..``high``, ``log``, ``step``, a
    ``grid``), categorical (``choices``) or fixed (``value``); ``when``: (earlier parameter,
    values that turn this one on) pairs (a mapping is accepted)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    grid: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        n, when, kinds = self.name, self.when, ", ".join(KINDS)
        _require(isinstance(n, str) and n, f"a parameter name must be a string, got {n!r}")
        _require(self.kind in KINDS, f"{n}: type must be one of {kinds}, got {self.kind!r}")
        form = f"{n}: when must be a table of name = value or [values], got {when!r}"
        _require(isinstance(when, Mapping | tuple), form)  # a tuple: (name, values) pairs
        pairs = when.items() if isinstance(when, Mapping) else when
        pairs = tuple((k, tuple(v) if isinstance(v, list | tuple) else (v,)) for k, v in pairs)
        bad = [k for k, v in pairs if not isinstance(k, str) or not v or not all(map(_scalar, v))]
        _require(not bad, form)
        object.__setattr__(self, "when", pairs)
        if isinstance(self.value, list):  # a list-valued field (e.g. forecast levels)
            object.__setattr__(self, "value", tuple(self.value))
        if self.kind == "categorical":
            _require(self.choices, f"{n}: choices must be a non-empty list, got {self.choices!r}")
            object.__setattr__(self, "choices", self._distinct("choices", self.choices))
        elif self.kind != "fixed":
            self._range(self.kind == "int")

    def _distinct(self, what: str, values: Any) -> tuple:
        n = self.name
        _require(isinstance(values, list | tuple), f"{n}: {what} must be a list, got {values!r}")
        for i, v in enumerate(values):
            _require(
                _scalar(v), f"{n}: {what} must be strings, numbers, booleans or null, not {v!r}"
            )
            _require(all(not _same(v, w) for w in values[:i]), f"{n}: {what}: {v!r} is there twice")
        return tuple(values)

    def _range(self, integer: bool) -> None:
        n, lo, hi, step = self.name, self.low, self.high, self.step
        yaml = " (YAML reads 1e-4 as text: write 1.0e-4)" * isinstance(lo or hi, str)
        _require(
            _number(lo, integer) and _number(hi, integer),
            f"{n}: low and high must be {'integers' if integer else 'numbers'}, got low={lo!r}, "
            f"high={hi!r}{yaml}",
        )
        _require(lo <= hi, f"{n}: low must be <= high, got low={lo!r}, high={hi!r}")
        _require(isinstance(self.log, bool), f"{n}: log must be true or false, got {self.log!r}")
        _require(lo > 0 or not self.log, f"{n}: log needs low > 0, got low={lo!r}")
        step = 1 if integer and step is None else step
        if step is not None:
            what = "an integer >= 1" if integer else "a number > 0"
            _require(_number(step, integer) and step > 0, f"{n}: step must be {what}, got {step!r}")
            _require(not self.log or step == 1, f"{n}: a step cannot be used with log")
            _require(
                math.isclose((hi - lo) / step, round((hi - lo) / step), abs_tol=1e-9),
                f"{n}: high - low must be a multiple of step, got {lo!r}..{hi!r} by {step!r}",
            )
        grid = self._distinct("grid", self.grid)
        for v in grid:
            ok = _number(v, integer) and lo <= v <= hi
            _require(ok, f"{n}: grid value {v!r} is not {'an integer ' * integer}in [{lo}, {hi}]")
        to = int if integer else float
        for key, v in ("low", to(lo)), ("high", to(hi)), ("step", step), ("grid", grid):
            object.__setattr__(self, key, v)

    @classmethod
    def from_table(cls, name: str, table: Any) -> Param:
        """The parameter a space file's table ``[name]`` describes (``value`` alone: fixed)."""
        _require(isinstance(table, Mapping), f"{name}: expected a table, got {table!r}")
        kind = table.get("type", "fixed" if "value" in table else None)
        _require(kind in KINDS, f"{name}: type must be one of {', '.join(KINDS)}, got {kind!r}")
        keys = (*KEYS.get(kind, NUMERIC), "when")
        unknown = ", ".join(sorted(set(table) - {"type", *keys}))
        takes = f"for type {kind} (it takes {', '.join(keys)})"
        _require(not unknown, f"{name}: unknown key(s) {unknown} {takes}")
        missing = [k for k in keys[: 1 if kind in KEYS else 2] if k not in table]
        _require(not missing, f"{name}: a {kind} parameter needs {' and '.join(missing)}")
        return cls(name=name, kind=kind, **{k: v for k, v in table.items() if k != "type"})

    def holds(self, chosen: Mapping[str, Any]) -> bool:
        """Whether every ``when`` holds for the values ``chosen`` so far."""
        return all(k in chosen and any(_same(chosen[k], v) for v in vs) for k, vs in self.when)

    def can_be(self, v: object) -> bool:
        """Whether this (non-float) parameter can take the value ``v``."""
        if self.kind in ("fixed", "categorical"):
            return any(_same(c, v) for c in (self.choices or (self.value,)))
        lo, hi, step = self.low, self.high, self.step
        on_step = _number(v, True) and lo <= v <= hi and (v - lo) % step == 0  # type: ignore
        return on_step or any(_same(g, v) for g in self.grid)

    def tried(self) -> list[tuple[str, Any]]:
        """The values ``Space.check`` builds a config with, each with what it is."""
        if self.kind in ("fixed", "categorical"):
            return [("choice", c) for c in self.choices] or [("value", self.value)]
        return [("low", self.low), ("high", self.high)] + [("grid", g) for g in self.grid]

    def suggest(self, trial: Any) -> Any:
        n = self.name
        if self.kind == "int":
            return trial.suggest_int(n, self.low, self.high, step=self.step, log=self.log)
        if self.kind == "float":
            return trial.suggest_float(n, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(n, list(self.choices)) if self.choices else self.value

    def grid_values(self) -> list[Any]:
        """The values this parameter takes on a grid (ValueError when it has none)."""
        if self.kind == "categorical" or self.grid:
            return list(self.choices or self.grid)
        n, lo, hi, step = self.name, self.low, self.high, self.step
        fix = "give it a step or a grid = [...] list of values"
        _require(step is not None, f"{n} (a float from {lo:g} to {hi:g}) cannot be gridded: {fix}")
        count = round((hi - lo) / step) + 1
        _require(count <= MAX_GRID, f"{n}: {count} values are over {MAX_GRID} for a grid: {fix}")
        if self.kind == "int":
            return list(range(lo, hi + 1, step))
        return [round(lo + i * step, 12) for i in range(count)]  # 0.1 * 3 -> 0.3

    def describe(self) -> str:
        if self.kind == "fixed":
            text = f"fixed at {_show(self.value)}"
        elif self.kind == "categorical":
            text = "one of " + ", ".join(map(_show, self.choices))
        else:
            text = f"{self.kind} {_show(self.low)}..{_show(self.high)}" + ", log" * self.log
            text += f", step {_show(self.step)}" if self.step not in (None, 1) else ""
            text += f", grid {', '.join(map(_show, self.grid))}" if self.grid else ""
        ifs = [f"{k} {'in' if v[1:] else '='} {', '.join(map(_show, v))}" for k, v in self.when]
        return f"{self.name}: {text}" + (f" (when {' and '.join(ifs)})" if ifs else "")


@dataclass(frozen=True)
class Space:
    """The parameters of a search, in declaration order; ``where`` (a file name or "the
    default space of TASK") starts every message about it."""

    params: tuple[Param, ...]
    where: str = "the search space"

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        _require(self.params, f"{self.where}: the space is empty: give at least one parameter")
        seen: dict[str, Param] = {}
        for p in self.params:
            _require(p.name not in seen, f"{self.where}: {p.name} is declared twice")
            for k, values in p.when:
                self._condition(p, k, values, seen)
            seen[p.name] = p

    def _condition(self, p: Param, k: str, values: tuple, seen: dict[str, Param]) -> None:
        where = f"{self.where}: {p.name}: when names {k!r}, which"
        if k not in seen:
            later = any(q.name == k for q in self.params)
            why = "is declared after it: move it above" if later else "is not in the space"
            raise ValueError(f"{where} {why} (declared before it: {', '.join(seen) or 'none'})")
        _require(seen[k].kind != "float", f"{where} is a float (when tests the others)")
        for v in values:
            why = f"when {k} = {_show(v)} can never hold ({seen[k].describe()})"
            _require(seen[k].can_be(v), f"{self.where}: {p.name}: {why}")

    @classmethod
    def parse(cls, mapping: Mapping[str, Any], where: str) -> Space:
        """The space a mapping of tables describes (a file's, or a ``TaskSpec.space``)."""
        _require(isinstance(mapping, Mapping), f"{where}: expected tables, got {mapping!r}")
        params = []
        for name, table in mapping.items():
            try:
                params.append(Param.from_table(name, table))
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}: {e}") from None
        return cls(tuple(params), where)

    def check(self, spec: Any) -> None:
        """Refuse, before any trial runs, a name that is no option of ``spec.config`` or of
        ``TrainConfig`` (naming the closest), and a bound, choice or value that, set alone
        over the task's defaults and the fixed values (its ``when`` held), makes an invalid
        config."""
        model = [f.name for f in documented(spec.config)]
        known = model + [f.name for f in documented(TrainConfig)]
        for p in self.params:
            close = difflib.get_close_matches(p.name, known, n=3)
            _require(
                p.name in known,
                f"{self.where}: {p.name!r} is not an option of the {spec.name} model config or "
                f"of TrainConfig" + (f"; did you mean {' or '.join(close)}?" if close else ""),
            )
        fixed = {p.name: p.value for p in self.params if p.kind == "fixed" and not p.when}
        for p in self.params:
            for label, v in p.tried():
                model_values, train_values = self.split(fixed | self._context(p) | {p.name: v})
                try:
                    spec.config(**model_values)
                    spec.train_config(**train_values)
                except (ValueError, TypeError) as e:
                    raise ValueError(
                        f"{self.where}: {p.name} = {_show(v)} ({label}) makes an invalid "
                        f"{spec.name} config: {e}"
                    ) from None

    def _context(self, p: Param) -> dict[str, Any]:
        """Values under which ``p`` is suggested: the first one each ``when`` allows."""
        out: dict[str, Any] = {}
        for k, values in p.when:
            out |= self._context(next(q for q in self.params if q.name == k)) | {k: values[0]}
        return out

    @staticmethod
    def split(values: Mapping[str, Any]) -> tuple[dict, dict]:
        """(model-config values, ``TrainConfig`` values) of ``values``, told apart by name."""
        model = {k: v for k, v in values.items() if k not in TRAIN_FIELDS}
        return model, {k: v for k, v in values.items() if k in TRAIN_FIELDS}

    def sample(self, trial: Any) -> tuple[dict, dict]:
        """(model-config overrides, ``TrainConfig`` overrides) for an Optuna trial (or any
        object with its ``suggest_*`` methods, e.g. ``optuna.trial.FixedTrial``): each
        parameter in declaration order, except one whose ``when`` fails, never suggested."""
        chosen: dict[str, Any] = {}
        for p in self.params:
            if p.holds(chosen):
                chosen[p.name] = p.suggest(trial)
        return self.split(chosen)

    def grid(self) -> dict[str, list]:
        """The search space of ``optuna.samplers.GridSampler``: each non-fixed parameter's
        values (choices; ints by step; floats by step or their ``grid`` list).

        A parameter under ``when`` is on the grid too (GridSampler refuses a name it has no
        values for) and the grid is the full product, so the combinations that differ only
        in a parameter whose ``when`` fails train the same configuration, once per value.
        ``trial.params`` holds only what a trial suggested: a runner may skip a trial whose
        params equal a finished trial's (a conditional parameter's values add no new ones)."""
        try:
            return {p.name: p.grid_values() for p in self.params if p.kind != "fixed"}
        except ValueError as e:
            raise ValueError(f"{self.where}: {e}") from None

    def describe(self) -> list[str]:
        """One line per parameter (for help texts and reports)."""
        return [p.describe() for p in self.params]


def read_space(path: str | Path) -> Space:
    """The space in a .toml, .json, .yaml or .yml file (YAML needs PyYAML)."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    _require(kind, f"space file {path}: expected a .toml, .json, .yaml or .yml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"space file {path}: cannot be read ({e})") from None
    parse, errors = (json.loads, json.JSONDecodeError)
    if kind == "TOML":
        parse, errors = tomllib.loads, tomllib.TOMLDecodeError
    elif kind == "YAML":
        try:
            import yaml  # optional: only YAML space files need it
        except ImportError:
            raise ValueError(
                f"space file {path}: reading YAML needs PyYAML (pip install pyyaml); or write "
                "the space as TOML"
            ) from None
        parse, errors = yaml.safe_load, yaml.YAMLError
    try:
        data = parse(text)
    except errors as e:
        raise ValueError(f"space file {path}: not valid {kind}: {e}") from None
    return Space.parse(data, str(path))


def default_space(spec: Any) -> Space:
    """The task's default space (``spec.space``), parsed and checked against its configs."""
    _require(spec.space, f"task {spec.name} has no default search space: give a space file")
    space = Space.parse(spec.space, f"the default space of {spec.name}")
    space.check(spec)
    return space


__all__ = ["KINDS", "MAX_GRID", "Param", "Space", "default_space", "read_space"]
