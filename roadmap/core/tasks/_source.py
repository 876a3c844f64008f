"""Rows of file-backed tasks (gsm8k, math500): from the Hub, a local file, or a local folder.

A ``source`` is one of:

* a Hub dataset id ("openai/gsm8k"), loaded with ``datasets.load_dataset`` (needs network);
* a local ``.jsonl`` / ``.json`` / ``.parquet`` file, which has no splits;
* a local folder laid out like the Hub repo: split files named ``train*`` / ``test*`` (Parquet,
  JSONL or JSON) in ``<folder>/<config>/``, ``<folder>/`` or ``<folder>/data/``.

``SourceTask`` turns such rows into problems with disjoint splits: when the source has both
train and test, any train question also in test is dropped; when it has one split (a single file,
MATH-500's test-only release), every question goes to a split by ``hash_split``.
"""

from __future__ import annotations

import json
import logging
import random
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from roadmap.core.errors import ConfigError, DataError, DependencyError, MissingPathError, SourceUnavailableError
from roadmap.core.tasks.base import SPLITS, Task, check_bad_row_policy, check_split, collect_rows, hash_split
from roadmap.core.types import Problem

__all__ = ["SourceUnavailableError", "RawSplit", "read_file", "load_source", "SourceTask"]

logger = logging.getLogger(__name__)

FILE_SUFFIXES = (".parquet", ".jsonl", ".json")


class RawSplit(NamedTuple):
    """Rows of one split as read from a source.

    Attributes:
        split: "train", "test", or "all" for a source without splits.
        rows: the rows, one dict per example, in source order.
        origin: where they came from (file path or "hub-id[split]"), for error messages.
    """

    split: str
    rows: list[dict]
    origin: str


def read_file(path: str | Path) -> list[dict]:
    """The rows of a local ``.jsonl`` / ``.json`` (a list of objects, or JSON lines) / ``.parquet`` file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except pa.ArrowException as err:
            raise DataError(f"file {str(path)!r} is not a readable Parquet file ({err}); re-export it") from err
    if suffix not in (".jsonl", ".json"):
        raise DataError(f"file {str(path)!r} has suffix {suffix!r}; use one of {FILE_SUFFIXES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"file {str(path)!r} is not UTF-8 text (byte {err.start}: {err.reason}); re-save it as UTF-8"
        ) from None
    if suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(
                f"file {str(path)!r} is not valid JSON (line {err.lineno} column {err.colno}: {err.msg}); fix it"
            ) from None
    else:  # JSON lines (datasets' Dataset.to_json writes lines even to a ".json" name)
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(
                    f"file {str(path)!r} line {lineno} is not valid JSON ({err.msg}); fix it or remove the line"
                ) from None
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(f"file {str(path)!r}: row {bad} is {type(rows[bad]).__name__}, not an object with columns")
    if not rows:
        raise DataError(f"file {str(path)!r} holds no rows; pass a file with at least one problem")
    return rows


def _split_files(folder: Path, config: str | None) -> dict[str, list[Path]]:
    dirs = ([folder / config] if config else []) + [folder, folder / "data"]
    for d in dirs:
        if not d.is_dir():
            continue
        found: dict[str, list[Path]] = {}
        for split in SPLITS:
            for suffix in FILE_SUFFIXES:  # one format per split, so a copy in two formats is not read twice
                files = sorted(d.glob(f"{split}*{suffix}"))
                if files:
                    found[split] = files
                    break
        if found:
            return found
    looked = ", ".join(str(d) for d in dirs)
    raise MissingPathError(
        f"folder {str(folder)!r} has no split files; looked for train*/test* {FILE_SUFFIXES} files in {looked}. "
        "Lay it out like the Hub repo (e.g. main/test-00000-of-00001.parquet) or pass a single file"
    )


def _load_hub(source: str, config: str | None, splits: tuple[str, ...], hint: str) -> list[RawSplit]:
    try:
        import datasets
    except ImportError as err:
        raise DependencyError(f"loading {source!r} from the Hub needs `datasets`; pip install datasets ({err})") from err
    out = []
    for split in splits:
        try:
            ds = (
                datasets.load_dataset(source, config, split=split)
                if config
                else datasets.load_dataset(source, split=split)
            )
        except Exception as err:
            raise SourceUnavailableError(
                f"could not load source={source!r} (config={config!r}, split={split!r}) from the Hugging Face Hub: "
                f"{type(err).__name__}: {err}. The Hub is probably unreachable from this machine. Download the "
                f"dataset where the Hub is reachable and pass a local file or folder instead, e.g. {hint}"
            ) from err
        out.append(RawSplit(split, [dict(r) for r in ds], f"{source}[{split}]"))
    return out


def load_source(source: str | Path, config: str | None, hub_splits: tuple[str, ...], hint: str) -> list[RawSplit]:
    """Read the rows of ``source`` (see the module docstring), one ``RawSplit`` per split found.

    Args:
        source: Hub id, local file or local folder.
        config: Hub config name ("main" for openai/gsm8k), or None; also the folder's subfolder.
        hub_splits: the splits to ask the Hub for.
        hint: an example of a local ``source`` to show when the Hub cannot be reached.
    """
    path = Path(source).expanduser()
    if path.is_file():
        return [RawSplit("all", read_file(path), str(path))]
    if path.is_dir():
        return [
            RawSplit(s, [r for f in files for r in read_file(f)], ", ".join(map(str, files)))
            for s, files in _split_files(path, config).items()
        ]
    text = str(source)
    if path.suffix.lower() in FILE_SUFFIXES or text.startswith(("/", ".", "~")) or text.count("/") > 1:
        raise MissingPathError(
            f"source={text!r} is neither an existing local file or folder nor a Hub id like 'owner/name'; "
            f"pass an existing .jsonl/.json/.parquet file or folder, e.g. {hint}"
        )
    return _load_hub(text, config, hub_splits, hint)


def _key(question: str) -> str:
    return " ".join(question.split())


def _where(p: Problem) -> str:
    return f"{p.meta.get('origin', '?')} row {p.meta.get('row', '?')}"


def _without_conflicts(parsed: dict[str, list[Problem]], on_bad_row: str) -> dict[str, list[Problem]]:
    """``parsed`` when no question has two different answers across its files (splits); else a
    ``BadRowError`` naming both rows, or, with ``on_bad_row="skip"``, the later row dropped with a warning.
    (``collect_rows`` does the same within one file.)"""
    from roadmap.core.tasks.base import BadRowError, _same_answer

    first: dict[str, Problem] = {}
    out: dict[str, list[Problem]] = {}
    for split, problems in parsed.items():
        out[split] = []
        for p in problems:
            seen = first.setdefault(_key(p.question), p)
            if seen is not p and not _same_answer(seen.answer, p.answer):
                msg = (f"{_where(p)} asks the question of {_where(seen)} with another answer ({p.answer!r}, not "
                       f"{seen.answer!r})")
                if on_bad_row == "raise":
                    raise BadRowError(f"{msg}; keep the right one, or pass on_bad_row='skip' to drop the later row")
                logger.warning("%s; dropped the later row", msg)
                continue
            out[split].append(p)
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if _key(p.question) not in seen:
            seen.add(_key(p.question))
            out.append(p)
    return out


class SourceTask(Task):
    """A task whose problems are rows of a dataset ``source``; subclasses parse one row.

    Problems load on first use and are cached. Splits are disjoint (see the module docstring);
    duplicate questions within a split are kept once.
    """

    hub_config: str | None = None
    #: ``problems`` warns itself when ``n`` exceeds the rows of a split (the CLI need not)
    warns_when_short = True
    hub_splits: tuple[str, ...] = ("train", "test")
    #: an example local source, shown when the Hub is unreachable
    local_hint: str = "source='/path/to/folder'"

    def __init__(self, source: str | Path, on_bad_row: str = "raise", test_fraction: float = 0.2) -> None:
        check_bad_row_policy(on_bad_row)
        if not 0.0 < test_fraction < 1.0:
            raise ConfigError(f"test_fraction={test_fraction} must lie strictly between 0 and 1")
        self.source = source
        self.on_bad_row = on_bad_row
        self.test_fraction = test_fraction
        self._splits: dict[str, list[Problem]] | None = None

    @abstractmethod
    def parse_row(self, index: int, row: dict, origin: str) -> Problem:
        """The problem of one source row; raises BadRowError (saying what is wrong) for an unusable row."""

    def _row_parser(self, origin: str) -> Callable[[int, dict], Problem]:
        """``parse_row`` for the rows of ``origin``."""
        return lambda i, row: self.parse_row(i, row, origin)

    def load(self) -> dict[str, list[Problem]]:
        """All problems by split ("train", "test"), in source order; read once, then cached."""
        if self._splits is not None:
            return self._splits
        raw = load_source(self.source, self.hub_config, self.hub_splits, self.local_hint)
        parsed = {
            r.split: collect_rows(r.rows, self._row_parser(r.origin), self.on_bad_row, r.origin)
            for r in raw
        }
        parsed = _without_conflicts(parsed, self.on_bad_row)
        if "train" in parsed and "test" in parsed:
            test = _dedupe(parsed["test"])
            test_keys = {_key(p.question) for p in test}
            train = [p for p in _dedupe(parsed["train"]) if _key(p.question) not in test_keys]
            if len(train) < len(parsed["train"]):
                logger.info(
                    "%s: dropped %d train row(s) duplicated or also in test",
                    self.source,
                    len(parsed["train"]) - len(train),
                )
        else:
            pool = _dedupe([p for problems in parsed.values() for p in problems])
            test = [p for p in pool if hash_split(p.question, self.test_fraction) == "test"]
            train = [p for p in pool if hash_split(p.question, self.test_fraction) == "train"]
        self._splits = {"train": train, "test": test}
        return self._splits

    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> list[Problem]:
        """The first ``n`` problems (all when None) of ``split`` in an order shuffled by ``seed``."""
        check_split(split)
        if n is not None and n < 0:
            raise ConfigError(f"n={n} is negative; pass a count >= 0, or None for all problems")
        pool = list(self.load()[split])
        random.Random(f"{self.name}-{seed}").shuffle(pool)
        warned = self.__dict__.setdefault("_warned_short", set())  # once per task, not once per phase of a run
        if pool and n is not None and n > len(pool) and (split, n) not in warned:
            warned.add((split, n))
            logger.warning("%s: asked for %d %s problems (--n, or a recipe's *_problems) but it holds %d; using those "
                           "%d (ask for %d or fewer to silence this)", self.source, n, split, len(pool), len(pool),
                           len(pool))
        return pool if n is None else pool[:n]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={str(self.source)!r})"
