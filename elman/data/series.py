"""Time series for forecasting: loading (CSV, Parquet, pandas), regular time grids, missing
values, per-series scaling fitted on training data only, and calendar features.

A data set is a list of ``Series``: one per target column, or per value of an id column (a
global model learns them all). Each holds float64 values on a regular grid, so "the next
step" always means the same interval; covariates ride along, split into past covariates
(known up to the forecast origin) and known-future ones (known over the horizon too, like
calendar features).

Handling of awkward input, each documented here and reported in ``Series.notes``:
- unsorted timestamps are sorted; a duplicate timestamp is an error naming it;
- gaps: the grid is reindexed to the frequency (given, or inferred as the most common step),
  so missing steps become missing values;
- missing values (NaN, or inserted by a gap): ``missing`` = "interpolate" (linear inside the
  series, nearest value at its ends), "ffill" (last value, then the first one), "zero", or
  "error"; infinite values are always an error;
- a non-numeric target or covariate is an error naming the column and the first bad value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

MISSING = ("interpolate", "ffill", "zero", "error")


def _pandas():
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError(
            "time series need pandas: `pip install 'elman[series]'` (or `pip install pandas`)"
        ) from e
    return pd


@dataclass
class Series:
    """One series on a regular grid: ``time`` (T,) timestamps (or integer steps), ``values``
    (T,) float64, ``past`` (T, Cp) and ``future`` (T, Cf) covariates (Cp, Cf may be 0)."""

    name: str
    time: np.ndarray
    values: np.ndarray
    past: np.ndarray
    future: np.ndarray
    freq: str | None = None
    notes: list[str] = field(default_factory=list)
    past_names: tuple[str, ...] = ()
    future_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.values)

    def head(self, n: int) -> Series:
        """The first ``n`` steps (e.g. the part a model was trained on)."""
        return replace(
            self,
            time=self.time[:n],
            values=self.values[:n],
            past=self.past[:n],
            future=self.future[:n],
        )


def stamp(t) -> str | int:
    """A timestamp as ISO text (the date alone at midnight), or an integer step as itself."""
    if isinstance(t, int | np.integer):
        return int(t)
    if not isinstance(t, np.datetime64):
        return str(t)
    text = np.datetime_as_string(t, unit="s")
    return text[:10] if text.endswith("T00:00:00") else text


def read_table(path: str | Path):
    """A CSV (or .tsv) or Parquet file as a DataFrame, with a clear error when it is missing."""
    pd, path = _pandas(), Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"time-series file {str(path)!r} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")


def load_series(
    data,
    targets: Sequence[str] | str | None = None,
    time_col: str | None = None,
    id_col: str | None = None,
    past: Sequence[str] = (),
    future: Sequence[str] = (),
    freq: str | None = None,
    missing: str = "interpolate",
) -> list[Series]:
    """Series from a path, a DataFrame or a pandas Series (see the module docstring).

    targets: the value column(s) (default: every numeric column that is not the time, id
    or a covariate). time_col: the timestamps (default: the DataFrame's index; integer steps
    when it has none). id_col: one series per id (one target column then)."""
    pd = _pandas()
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {', '.join(MISSING)}; got {missing!r}")
    frame = read_table(data) if isinstance(data, str | Path) else data
    if isinstance(frame, pd.Series):
        frame = frame.to_frame(name=str(frame.name or "value"))
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"data: expected a path, DataFrame or Series, got {type(data).__name__}")
    past, future = list(past), list(future)
    _require_columns(frame, [c for c in (time_col, id_col) if c] + past + future)
    targets = _targets(frame, targets, {time_col, id_col, *past, *future})
    if id_col is not None and len(targets) != 1:
        raise ValueError(f"with id_col, give exactly one target column, got {targets}")
    groups = frame.groupby(id_col, sort=True) if id_col else [(None, frame)]
    out = []
    for key, part in groups:
        for target in targets:
            name = str(key) if id_col else target
            out.append(_one(part, name, target, time_col, past, future, freq, missing))
    return out


def _require_columns(frame, columns: Sequence[str]) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(f"column(s) {absent} not in the data; it has {list(frame.columns)}")


def _targets(frame, targets, taken: set) -> list[str]:
    if targets is None:
        pd = _pandas()
        found = [
            c for c in frame.columns if c not in taken and pd.api.types.is_numeric_dtype(frame[c])
        ]
        if not found:
            raise ValueError(f"no numeric target column among {list(frame.columns)}")
        return found
    targets = [targets] if isinstance(targets, str) else list(targets)
    _require_columns(frame, targets)
    return targets


def _numeric(frame, column: str, where: str) -> np.ndarray:
    pd = _pandas()
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bool(bad.any()):
        first = frame[column][bad].iloc[0]
        raise ValueError(f"{where}: column {column!r} holds a non-number, {first!r}")
    out = np.array(values.to_numpy(dtype=np.float64))  # a writable copy, not a view
    if np.isinf(out).any():
        raise ValueError(f"{where}: column {column!r} holds an infinite value")
    return out


def _one(part, name, target, time_col, past, future, freq, missing) -> Series:
    notes = []
    if time_col:
        part = part.set_axis(_dates(part[time_col], time_col, name)).drop(columns=time_col)
    index = part.index
    if not index.is_monotonic_increasing:
        part, notes = part.sort_index(), [*notes, "timestamps were not sorted: sorted them"]
    duplicated = part.index.duplicated()
    if duplicated.any():
        raise ValueError(f"series {name!r}: duplicate timestamp {part.index[duplicated][0]}")
    part, freq, note = _regular(part, freq, name)
    notes += [note] if note else []
    columns = {c: _numeric(part, c, f"series {name!r}") for c in (target, *past, *future)}
    values = _fill(columns[target], missing, f"series {name!r} target {target!r}", notes)
    cov = [_fill(columns[c], missing, f"series {name!r} covariate {c!r}", notes) for c in past]
    fut = [_fill(columns[c], missing, f"series {name!r} covariate {c!r}", notes) for c in future]
    stack = lambda cols: np.stack(cols, 1) if cols else np.zeros((len(values), 0))  # noqa: E731
    time, names = part.index.to_numpy(), (tuple(past), tuple(future))
    return Series(name, time, values, stack(cov), stack(fut), freq, notes, *names)


def _dates(column, label: str, name: str):
    """``column`` as a DatetimeIndex; a value that is not a date is an error naming the
    column, its row (1-based, as counted below the header) and the value."""
    pd = _pandas()
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(column))
    except (ValueError, TypeError, OverflowError):  # pandas' parser errors: find the value
        dates = pd.DatetimeIndex(pd.to_datetime(column, errors="coerce"))
    bad = np.flatnonzero(dates.isna())
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"series {name!r}: column {label!r}, row {_row(column, i)}: {column.iloc[i]!r} is "
            "not a date (or not in the format of the rows before it)"
        )
    return dates


def _row(column, i: int) -> int:
    """The 1-based data row of position ``i`` (its label in a default RangeIndex)."""
    label = column.index[i]
    return int(label) + 1 if isinstance(label, int | np.integer) else i + 1


def _regular(part, freq: str | None, name: str):
    """Reindex ``part`` onto a regular grid; returns (frame, freq, note or None)."""
    pd = _pandas()
    index = part.index
    if freq is not None:
        try:
            pd.tseries.frequencies.to_offset(freq)
        except ValueError:
            raise ValueError(f"freq {freq!r} is not a pandas frequency (D, h, MS, ...)") from None
    if not isinstance(index, pd.DatetimeIndex):
        if freq is not None:
            raise ValueError(
                f"freq {freq!r}: series {name!r} has integer time steps, not dates; freq "
                "applies to dates only"
            )
        steps = np.diff(index.to_numpy())
        if len(steps) and not (steps == 1).all():
            raise ValueError(f"series {name!r}: integer time steps must be consecutive")
        return part, None, None
    if len(index) < 3 and freq is None:
        raise ValueError(f"series {name!r}: too short to infer a frequency; pass freq")
    if freq is None:
        freq = infer_freq(index) or _common_freq(index, name)
    grid = pd.date_range(index[0], index[-1], freq=freq)
    if len(grid) == len(index) and (grid == index).all():
        return part, freq, None
    if not index.isin(grid).all():
        raise ValueError(
            f"series {name!r}: timestamps do not lie on a {freq!r} grid "
            f"(e.g. {index[~index.isin(grid)][0]}); pass the right freq"
        )
    added = len(grid) - len(index)
    return part.reindex(grid), freq, f"{added} missing step(s) inserted on the {freq} grid"


def infer_freq(index) -> str | None:
    """``pd.infer_freq`` as a string: pandas 3.1 starts moving it to an offset object (and
    warns unless asked for the new behaviour); older versions have no such option."""
    pd = _pandas()
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            found = pd.infer_freq(index)
    except (KeyError, AttributeError):  # pandas' OptionError: no such option here
        found = pd.infer_freq(index)
    return getattr(found, "freqstr", found)


def _common_freq(index, name: str) -> str:
    """With gaps, the frequency most runs of three consecutive timestamps agree on."""
    found = Counter(infer_freq(index[i : i + 3]) for i in range(min(len(index) - 2, 500)))
    found.pop(None, None)
    if not found:
        raise ValueError(f"series {name!r}: cannot infer a frequency; pass freq")
    return found.most_common(1)[0][0]


def _fill(x: np.ndarray, missing: str, where: str, notes: list[str]) -> np.ndarray:
    gaps = np.isnan(x)
    if not gaps.any():
        return x
    if gaps.all():
        raise ValueError(f"{where}: every value is missing")
    if missing == "error":
        raise ValueError(f"{where}: {int(gaps.sum())} missing value(s) (missing='error')")
    notes.append(f"{where}: filled {int(gaps.sum())} missing value(s) by {missing}")
    if missing == "zero":
        return np.where(gaps, 0.0, x)
    idx = np.arange(len(x))
    if missing == "interpolate":
        return np.interp(idx, idx[~gaps], x[~gaps])
    last = np.maximum.accumulate(np.where(gaps, 0, idx))  # ffill: index of the last value
    filled = x[last]
    return np.where(np.isnan(filled), x[~gaps][0], filled)


__all__ = ["MISSING", "Series", "load_series", "read_table", "stamp"]
