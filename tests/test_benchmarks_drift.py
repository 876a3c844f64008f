"""Nothing drifts (issue 28, item 3): every figure in BENCHMARKS.md's headline tables and README's status table
equals the stored result it names.

A table is checked when its header has a ``value`` column and a ``source`` column. The value cell holds one or
more figures separated by `` vs ``, `` → ``, `` / `` or ``; ``; each figure is a number with an optional unit (``%``
scales the stored fraction by 100; any other unit, such as `` s`` or `` MiB``, is only text) and an optional
interval ``[lo–hi]`` in the same unit. The source cell lists one item per figure, in order, separated by commas:
either a pointer in backticks, ``FILE#POINTER``, or ``none (reason)`` for a figure with no stored result.

- FILE is a path from the repository root. ``.json`` is read as JSON, ``.jsonl`` as the list of its lines, any
  other file as text.
- POINTER, for JSON: ``/``-separated segments, as in a JSON pointer (``~1`` stands for ``/``, ``~0`` for ``~``).
  A segment is a key of an object, an index into a list, or ``field=value[&field=value...]``: the one element of
  a list whose fields print as those values. It must end at a number, or at an object with ``accuracy`` (the
  figure) and ``ci95`` (its interval).
- POINTER, for text: ``re:REGEX``, whose first group is the figure (the regex must match once).

A figure matches when the stored number, rounded half up to the decimals the table shows (with thousands commas
when it shows them), prints as the table does; so does each end of an interval.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("BENCHMARKS.md", "README.md")
# Figures shown without a stored result, each with its reason in the table: keep this short.
MAX_UNSOURCED = 8

_SEP = re.compile(r"\s*;\s+|\s+(?:vs|→|/)\s+")
_FIGURE = re.compile(r"^(?P<num>[+-]?\d[\d,]*(?:\.\d+)?)(?P<unit>[^\[\]]*?)\s*"
                     r"(?:\[(?P<lo>[+-]?\d[\d,]*(?:\.\d+)?)\s*[–-]\s*(?P<hi>[+-]?\d[\d,]*(?:\.\d+)?)\])?$")
_PIPE = re.compile(r"(?<!\\)\|")
_ITEM = re.compile(r"`(?P<ptr>[^`]+)`|none \((?P<reason>[^)]+)\)")


@dataclass
class Row:
    file: str
    line: int
    label: str
    value: str
    source: str


def table_rows(path: Path) -> list[Row]:
    """The rows of every table in ``path`` whose header has a value column and a source column."""
    rows: list[Row] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    header: list[str] | None = None
    for i, line in enumerate(lines, 1):
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip().replace("\\|", "|") for c in _PIPE.split(line.strip().strip("|"))]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(line.replace("|", "").replace(" ", "")) <= set("-:"):
            continue
        value_col = next((k for k, h in enumerate(header) if h.startswith("value")), None)
        source_col = next((k for k, h in enumerate(header) if h == "source"), None)
        if value_col is None or source_col is None:
            continue
        if len(cells) != len(header):
            rows.append(Row(path.name, i, cells[0], "", f"malformed: {len(cells)} cells, header has {len(header)}"))
            continue
        label = " ".join(c for c in cells[:2] if c)
        rows.append(Row(path.name, i, label, cells[value_col], cells[source_col]))
    return rows


def parse_figures(value: str) -> list[dict]:
    """The figures of a value cell: number text, unit and interval texts."""
    out = []
    for term in _SEP.split(value.replace("**", "").strip()):
        m = _FIGURE.match(term.strip())
        if not m:
            raise ValueError(f"cannot read {term!r} as a figure (NUMBER[unit] [lo–hi])")
        out.append({"text": term.strip(), "num": m["num"], "unit": m["unit"].strip(), "lo": m["lo"], "hi": m["hi"]})
    return out


def parse_sources(source: str) -> list[tuple[str | None, str | None]]:
    """``(pointer, None)`` or ``(None, reason)`` per item of a source cell."""
    items = [(m["ptr"], m["reason"]) for m in _ITEM.finditer(source)]
    rest = _ITEM.sub("", source).replace(",", "").strip()
    if rest:
        raise ValueError(f"cannot read {rest!r} in the source cell (use `FILE#POINTER` or none (reason))")
    return items


def _unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def _as_text(x) -> str:
    return json.dumps(x) if not isinstance(x, str) else x


def resolve(pointer: str, root: Path):
    """The value ``FILE#POINTER`` names, under ``root``; ValueError naming the segment that fails."""
    if "#" not in pointer:
        raise ValueError(f"{pointer!r}: no '#POINTER' after the file")
    name, ptr = pointer.split("#", 1)
    path = root / name
    if not path.is_file():
        raise ValueError(f"{name}: no such file")
    if ptr.startswith("re:"):
        found = re.findall(ptr[3:], path.read_text(encoding="utf-8"))
        if len(found) != 1:
            raise ValueError(f"{pointer}: the regex matched {len(found)} times, not once")
        return float(str(found[0]).replace(",", ""))
    text = path.read_text(encoding="utf-8")
    node = [json.loads(x) for x in text.splitlines() if x.strip()] if name.endswith(".jsonl") else json.loads(text)
    for raw in ptr.strip("/").split("/") if ptr.strip("/") else []:
        seg = _unescape(raw)
        if isinstance(node, list) and "=" in seg:
            want = [tuple(_unescape(p).split("=", 1)) for p in raw.split("&")]
            hits = [x for x in node if isinstance(x, dict) and all(k in x and _as_text(x[k]) == v for k, v in want)]
            if len(hits) != 1:
                raise ValueError(f"{pointer}: {seg!r} selects {len(hits)} elements, not one")
            node = hits[0]
        elif isinstance(node, list) and re.fullmatch(r"-?\d+", seg):
            if not -len(node) <= int(seg) < len(node):
                raise ValueError(f"{pointer}: index {seg} out of range ({len(node)} elements)")
            node = node[int(seg)]
        elif isinstance(node, dict) and seg in node:
            node = node[seg]
        else:
            raise ValueError(f"{pointer}: no {seg!r} here")
    return node


def shown(x: float, like: str, scale: float) -> str:
    """``x * scale`` printed as ``like`` is: its decimals, half up, thousands commas if it has them."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    decimals = len(like.split(".")[1]) if "." in like else 0
    q = Decimal(repr(float(x))) * Decimal(repr(scale))
    q = q.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if q == 0:
        q = abs(q)
    return f"{q:,}" if "," in like else f"{q}"


def check_row(row: Row, root: Path) -> tuple[list[str], list[str]]:
    """(problems, reasons of unsourced figures) for one table row."""
    where = f"{row.file}:{row.line} ({row.label[:60]})"
    if row.source.startswith("malformed"):
        return [f"{where}: {row.source}"], []
    try:
        figures = parse_figures(row.value)
        sources = parse_sources(row.source)
    except ValueError as e:
        return [f"{where}: {e}"], []
    if len(sources) != len(figures):
        return [f"{where}: {len(figures)} figure(s) in {row.value!r} but {len(sources)} source item(s)"], []
    problems, unsourced = [], []
    for fig, (ptr, reason) in zip(figures, sources):
        if ptr is None:
            unsourced.append(f"{where}: {fig['text']} — none ({reason})")
            continue
        try:
            got = resolve(ptr, root)
        except (ValueError, json.JSONDecodeError) as e:
            problems.append(f"{where}: {e}")
            continue
        ci = None
        if isinstance(got, dict):
            if "accuracy" not in got:
                problems.append(f"{where}: {ptr} is an object without 'accuracy'")
                continue
            got, ci = got["accuracy"], got.get("ci95")
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            problems.append(f"{where}: {ptr} is {got!r}, not a number")
            continue
        scale = 100.0 if fig["unit"] == "%" else 1.0
        want = shown(got, fig["num"], scale)
        if want != fig["num"].lstrip("+"):
            problems.append(f"{where}: table shows {fig['num']}{fig['unit']}, {ptr} gives {want}")
        if fig["lo"] is not None:
            if not ci or len(ci) != 2:
                problems.append(f"{where}: table shows an interval, {ptr} has no ci95")
                continue
            lo, hi = shown(ci[0], fig["lo"], scale), shown(ci[1], fig["hi"], scale)
            if (lo, hi) != (fig["lo"], fig["hi"]):
                problems.append(f"{where}: table shows [{fig['lo']}–{fig['hi']}], {ptr} gives [{lo}–{hi}]")
    return problems, unsourced


def check(doc: Path, root: Path = ROOT) -> tuple[list[str], list[str], int]:
    """(problems, unsourced figures, number of figures checked against a stored result) for one document."""
    problems, unsourced, checked = [], [], 0
    for row in table_rows(doc):
        p, u = check_row(row, root)
        problems += p
        unsourced += u
        if not p:
            try:
                checked += len(parse_figures(row.value)) - len(u)
            except ValueError:
                pass
    return problems, unsourced, checked


@pytest.mark.parametrize("name", CHECKED)
def test_every_figure_equals_its_stored_result(name):
    problems, _, checked = check(ROOT / name)
    assert not problems, "\n".join(problems)
    assert checked > 0, f"{name}: no table with 'value' and 'source' columns was found"


def test_benchmarks_headline_is_short_and_mostly_sourced():
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert len(text.split("\n")) <= 160, "BENCHMARKS.md is the headline only; per-area reports go to docs/benchmarks/"
    _, unsourced, checked = check(ROOT / "BENCHMARKS.md")
    assert checked >= 30, checked
    assert len(unsourced) <= MAX_UNSOURCED, "\n".join(unsourced)


def test_links_in_the_reports_resolve():
    docs = [ROOT / "BENCHMARKS.md", ROOT / "README.md", *sorted((ROOT / "docs" / "benchmarks").glob("*.md"))]
    missing = []
    for doc in docs:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if "://" not in target and not (doc.parent / target).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not missing, "\n".join(missing)


def _copy_tree(tmp_path: Path, doc: str, results: list[str]) -> Path:
    for rel in [doc, *results]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    return tmp_path


def test_an_edited_result_is_reported(tmp_path):
    result = "benchmarks/results/ladder/test-seed-918273.json"
    root = _copy_tree(tmp_path, "BENCHMARKS.md", [result])
    rows = [r for r in table_rows(root / "BENCHMARKS.md") if f"{result}#/results/ladder6-L3" in r.source]
    assert rows, "the headline should show the ladder's 3-operand figure"
    assert check_row(rows[0], root) == ([], [])
    data = json.loads((root / result).read_text())
    data["results"]["ladder6-L3"]["accuracy"] = 0.581
    (root / result).write_text(json.dumps(data))
    problems, _ = check_row(rows[0], root)
    assert len(problems) == 1 and "57.2%" in problems[0] and "58.1" in problems[0], problems
    data["results"]["ladder6-L3"]["accuracy"] = 0.572
    data["results"]["ladder6-L3"]["ci95"][1] = 0.70
    (root / result).write_text(json.dumps(data))
    problems, _ = check_row(rows[0], root)
    assert len(problems) == 1 and "[52.8–61.5]" in problems[0] and "[52.8–70.0]" in problems[0], problems


def test_an_edited_table_or_a_missing_result_is_reported(tmp_path):
    root = tmp_path
    (root / "r.json").write_text(json.dumps({"runs": [{"name": "a", "acc": {"accuracy": 0.5, "ci95": [0.4, 0.6]}},
                                                      {"name": "b", "n": 1234567}]}))
    (root / "r.jsonl").write_text('{"m": "x", "b": 16, "v": 0.25}\n{"m": "x", "b": 4, "v": 0.125}\n')
    (root / "t.md").write_text("Inputs tried: 127.\n")
    doc = root / "D.md"
    doc.write_text("\n".join([
        "| id | figure | value [95% CI] | source |",
        "| --- | --- | --- | --- |",
        "| 1 | ok | 50.0% [40.0–60.0] vs 1,234,567 | `r.json#/runs/name=a/acc`, `r.json#/runs/name=b/n` |",
        "| 2 | jsonl and text | 25.0% → 0.125 / 127 | `r.jsonl#/m=x&b=16/v`, `r.jsonl#/1/v`, `t.md#re:Inputs tried: (\\d+)` |",
        "| 3 | wrong value | 51.0% | `r.json#/runs/name=a/acc` |",
        "| 4 | no source | 3.5 | |",
        "| 5 | missing key | 3.5 | `r.json#/runs/name=c/acc` |",
        "| 6 | unsourced | 7 s | none (the run folder was not kept) |",
        "| 7 | missing file | 7 s | `nope.json#/x` |",
        "",
    ]))
    problems, unsourced, checked = check(doc, root)
    assert checked == 5
    assert unsourced == ["D.md:8 (6 unsourced): 7 s — none (the run folder was not kept)"]
    assert [p.split(" (")[0] for p in problems] == ["D.md:5", "D.md:6", "D.md:7", "D.md:9"], problems
    assert "table shows 51.0%" in problems[0] and "gives 50.0" in problems[0]
    assert "1 figure(s)" in problems[1] and "0 source item(s)" in problems[1]
    assert "'name=c' selects 0 elements" in problems[2]
    assert "nope.json: no such file" in problems[3]
