"""Compute-performance fits (ScaleRL, arXiv 2510.13786): where does more training compute lead?

ScaleRL fits the saturating sigmoid

    R(C) = R0 + (A - R0) / (1 + (C_mid / C) ** B)

to accuracy R against training compute C, leaving out an early warm-up part of the run:
A is the asymptotic accuracy (the ceiling), B the efficiency (steepness), C_mid the compute at
which half of the gain A - R0 is reached, and R0 the accuracy the run starts from. The
parameters come with standard errors from the fit's covariance and, on request, bootstrap
intervals. A power law R(C) = a * C ** b is fitted the same way for comparison; it has no
ceiling, which is why ScaleRL prefers the sigmoid for extrapolation.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roadmap.core.errors import ConfigError, DataError, MissingPathError
from roadmap.core.io import save_figure

logger = logging.getLogger(__name__)

__all__ = ["SigmoidFit", "PowerLawFit", "sigmoid", "fit_sigmoid", "fit_power_law", "load_points", "read_points", "predict_last",
           "plot_fits", "falling_warning"]


def sigmoid(c, a: float, b: float, c_mid: float, r0: float):
    """ScaleRL's R(C); works on floats and numpy arrays."""
    import numpy as np

    c = np.asarray(c, dtype=float)
    return r0 + (a - r0) / (1.0 + (c_mid / c) ** b)


@dataclass
class SigmoidFit:
    """A fitted sigmoid: parameters, their standard errors, and what the fit saw."""

    a: float
    b: float
    c_mid: float
    r0: float
    a_err: float
    b_err: float
    c_mid_err: float
    points_used: int
    warmup_fraction: float
    rmse: float
    bootstrap: dict[str, list[float]] = field(default_factory=dict)
    warning: str | None = None  # set (and logged) when accuracy falls with compute, see falling_warning
    #: parameters the fit pushed to a bound of its search ("B=20 (upper bound)"): limits, not estimates
    at_bounds: list[str] = field(default_factory=list)

    def predict(self, c):
        return sigmoid(c, self.a, self.b, self.c_mid, self.r0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PowerLawFit:
    """R(C) = coef * C ** exponent, fitted to the same points."""

    coef: float
    exponent: float
    coef_err: float
    exponent_err: float
    points_used: int
    rmse: float

    def predict(self, c):
        import numpy as np

        return self.coef * np.asarray(c, dtype=float) ** self.exponent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prepare(compute: Sequence[float], accuracy: Sequence[float], warmup_fraction: float):
    import numpy as np

    c = np.asarray(compute, dtype=float)
    r = np.asarray(accuracy, dtype=float)
    if c.shape != r.shape or c.ndim != 1:
        raise DataError(f"compute ({c.shape}) and accuracy ({r.shape}) must be 1-D and the same length")
    if not np.all(np.isfinite(c)) or not np.all(np.isfinite(r)):
        raise DataError("compute and accuracy must be finite numbers (found NaN or inf)")
    if np.any(c <= 0):
        raise DataError("compute must be positive (the fits use C ** B); drop the zero-compute point or shift it")
    if not 0 <= warmup_fraction < 1:
        raise ConfigError(f"warmup_fraction={warmup_fraction} must lie in [0, 1)")
    order = np.argsort(c)
    c, r = c[order], r[order]
    keep = c >= c[0] + warmup_fraction * (c[-1] - c[0]) if warmup_fraction else np.ones_like(c, dtype=bool)
    return c[keep], r[keep]


#: an accuracy range below this is a flat curve (accuracies are fractions of problems)
_FLAT = 1e-9
#: the search range of B (efficiency) in fit_sigmoid
_B_BOUNDS = (0.05, 20.0)


def _at_bounds(p, max_accuracy: float, lo_log_mid: float, hi_log_mid: float) -> list[str]:
    """The parameters of a fit ``p`` = (A, B, log C_mid) that sit at a bound of the search, as "B=20 (upper bound)"."""
    out = []
    if p[0] >= max_accuracy - 1e-4:
        out.append(f"A={p[0]:.4g} (upper bound, max_accuracy)")
    for name, value, lo, hi, shown in (("B", p[1], *_B_BOUNDS, p[1]),
                                       ("C_mid", p[2], lo_log_mid, hi_log_mid, math.exp(p[2]))):
        tol = 1e-3 * (hi - lo)
        if value <= lo + tol or value >= hi - tol:
            out.append(f"{name}={shown:.4g} ({'lower' if value <= lo + tol else 'upper'} bound)")
    return out


def fit_sigmoid(
    compute: Sequence[float], accuracy: Sequence[float], *, r0: float | None = None, warmup_fraction: float = 0.0,
    max_accuracy: float = 1.0, bootstrap: int = 0, seed: int = 0,
) -> SigmoidFit:
    """Fit A, B and C_mid (R0 fixed) to points of accuracy against compute.

    Args:
        compute: training compute of each point (tokens, FLOPs or GPU hours; positive).
        accuracy: accuracy at each point.
        r0: starting accuracy; by default the accuracy of the lowest-compute point given
            (before the warm-up cut), as ScaleRL fixes it.
        warmup_fraction: share of the compute range at the start that is left out of the fit.
        max_accuracy: upper bound of A (1.0 for accuracies).
        bootstrap: resample the points this many times for percentile intervals (0: none).
    """
    import numpy as np
    from scipy.optimize import curve_fit

    c_all, r_all = _prepare(compute, accuracy, 0.0)
    c, r = _prepare(compute, accuracy, warmup_fraction)
    if len(c) < 3:
        raise DataError(f"{len(c)} points remain after the warm-up cut; the sigmoid needs at least 3")
    distinct = sorted(set(c.tolist()))
    if len(distinct) < 3:
        raise DataError(f"the points hold {len(distinct)} distinct compute value(s) ({', '.join(f'{x:.4g}' for x in distinct)}) "
                        "after the warm-up cut; a sigmoid of compute needs at least 3: add points at other compute")
    if float(r.max() - r.min()) < _FLAT:
        raise DataError(f"accuracy is flat ({float(r[0]):.4g} at every compute value): a flat curve determines no "
                        "ceiling A, efficiency B or midpoint C_mid; fit a run whose accuracy changes with compute")
    r0 = float(r_all[0]) if r0 is None else float(r0)

    def model(x, a, b, log_c_mid):
        return sigmoid(x, a, b, math.exp(log_c_mid), r0)

    def solve(x, y):
        lo_a = min(max(y.max(), r0) - 1e-6, max_accuracy - 1e-6)
        best = None
        # a few starts over C_mid and B: the loss surface has flat valleys
        for log_mid in np.log(np.geomspace(x.min(), x.max() * 10, 5)):
            for b0 in (0.5, 1.5, 3.0):
                try:
                    p, cov = curve_fit(model, x, y, p0=[min(max_accuracy, max(y.max(), r0) + 0.05), b0, log_mid],
                                       bounds=([lo_a, _B_BOUNDS[0], math.log(x.min()) - 10],
                                               [max_accuracy, _B_BOUNDS[1], math.log(x.max()) + 10]),
                                       maxfev=20000)
                except (RuntimeError, ValueError):
                    continue
                sse = float(np.sum((model(x, *p) - y) ** 2))
                if best is None or sse < best[0]:
                    best = (sse, p, cov)
        if best is None:
            raise DataError("the sigmoid fit did not converge on these points; check that accuracy rises with compute")
        return best

    sse, p, cov = solve(c, r)
    at_bounds = _at_bounds(p, max_accuracy, math.log(c.min()) - 10, math.log(c.max()) + 10)
    if at_bounds:
        logger.warning("the sigmoid fit stopped at the bound(s) of its search: %s; those values are limits, not "
                       "estimates, and predictions from this fit are not meaningful", ", ".join(at_bounds))
    err = np.sqrt(np.clip(np.diag(cov), 0, None)) if np.all(np.isfinite(cov)) else np.full(3, float("nan"))
    a, b, c_mid = float(p[0]), float(p[1]), math.exp(p[2])
    boot: dict[str, list[float]] = {}
    if bootstrap:
        rng = np.random.default_rng(seed)
        samples = []
        for _ in range(bootstrap):
            idx = np.sort(rng.integers(0, len(c), len(c)))
            if len(set(idx.tolist())) < 3:
                continue
            try:
                _, q, _ = solve(c[idx], r[idx])
            except DataError:
                continue
            samples.append((q[0], q[1], math.exp(q[2])))
        if samples:
            arr = np.asarray(samples)
            for k, name in enumerate(("a", "b", "c_mid")):
                boot[name] = [float(np.percentile(arr[:, k], 2.5)), float(np.percentile(arr[:, k], 97.5))]
    warning = falling_warning(c, r)
    if warning:
        logger.warning("%s", warning)
    return SigmoidFit(a=a, b=b, c_mid=c_mid, r0=r0, a_err=float(err[0]), b_err=float(err[1]),
                      c_mid_err=float(c_mid * err[2]), points_used=len(c), warmup_fraction=warmup_fraction,
                      rmse=math.sqrt(sse / len(c)), bootstrap=boot, warning=warning, at_bounds=at_bounds)


def fit_power_law(compute: Sequence[float], accuracy: Sequence[float], *, warmup_fraction: float = 0.0) -> PowerLawFit:
    """Fit R(C) = coef * C ** exponent on the same points (after the same warm-up cut)."""
    import numpy as np
    from scipy.optimize import curve_fit

    c, r = _prepare(compute, accuracy, warmup_fraction)
    if len(c) < 2:
        raise DataError(f"{len(c)} points remain after the warm-up cut; the power law needs at least 2")
    if np.any(r <= 0):
        raise DataError("a power law needs positive accuracies")
    slope, intercept = np.polyfit(np.log(c), np.log(r), 1)
    p, cov = curve_fit(lambda x, k, e: k * x ** e, c, r, p0=[math.exp(intercept), slope], maxfev=20000)
    err = np.sqrt(np.clip(np.diag(cov), 0, None)) if np.all(np.isfinite(cov)) else np.full(2, float("nan"))
    rmse = float(np.sqrt(np.mean((p[0] * c ** p[1] - r) ** 2)))
    return PowerLawFit(coef=float(p[0]), exponent=float(p[1]), coef_err=float(err[0]), exponent_err=float(err[1]),
                       points_used=len(c), rmse=rmse)


def predict_last(compute: Sequence[float], accuracy: Sequence[float], *, r0: float | None = None,
                 warmup_fraction: float = 0.0) -> dict[str, Any]:
    """The extrapolation check of ScaleRL: fit the first half of the points, predict the last one.

    Returns the fit on the first ``ceil(n/2)`` points (at least 3), the last point's compute and
    accuracy, the prediction and its absolute error.
    """
    n = len(compute)
    k = max(3, (n + 1) // 2)
    if n < k + 1:
        raise DataError(f"{n} points: predicting the last from the first half needs at least 4")
    order = sorted(range(n), key=lambda i: compute[i])
    c = [compute[i] for i in order]
    a = [accuracy[i] for i in order]
    early = fit_sigmoid(c[:k], a[:k], r0=r0, warmup_fraction=warmup_fraction)
    predicted = float(early.predict(c[-1]))
    return {"points_fitted": k, "fit": early.to_dict(), "last_compute": c[-1], "last_accuracy": a[-1],
            "predicted": predicted, "abs_error": abs(predicted - a[-1])}


def read_points(path: str | Path) -> tuple[list[float], list[float], float | None]:
    """(compute, accuracy, R0) from a points file: a JSON list of {"compute", "accuracy"} objects, a
    CSV with those columns, or a run's metrics.json. R0 is the metrics.json's iteration-0 accuracy
    (that zero-compute point is left out of the lists), else None.

    Unreadable files, missing or non-numeric fields and accuracies outside [0, 1] (e.g. given
    in percent) raise ``DataError`` naming the file, the point and the value.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingPathError(f"{path} does not exist; give a JSON or CSV file of compute/accuracy points")
    r0 = None
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}); re-save it as UTF-8 JSON or CSV") from None
    if p.suffix == ".csv":
        import csv

        rows = list(csv.DictReader(text.splitlines()))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} is not valid JSON (line {err.lineno} column {err.colno}: {err.msg}); "
                            "give a JSON list of {compute, accuracy}, a metrics.json or a .csv") from None
        if isinstance(data, dict) and "iterations" in data:  # a run's metrics.json
            try:
                start = [r["accuracy"] for r in data["iterations"] if r["train_compute"] == 0]
                rows = [{"compute": r["train_compute"], "accuracy": r["accuracy"]} for r in data["iterations"]
                        if r["train_compute"] > 0]
            except (KeyError, TypeError) as err:
                raise DataError(f"{path}: every iteration of a metrics.json needs 'train_compute' and "
                                f"'accuracy' (missing or wrong: {err})") from None
            r0 = float(start[0]) if start else None
        else:
            rows = data["points"] if isinstance(data, dict) and "points" in data else data
    if not isinstance(rows, list):
        raise DataError(f"{path} holds a {type(rows).__name__}; give a list of {{compute, accuracy}} points")
    compute, accuracy = [], []
    for i, r in enumerate(rows):
        try:
            compute.append(float(r["compute"]))
            accuracy.append(float(r["accuracy"]))
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}: point {i} ({r!r}) needs numeric 'compute' and 'accuracy' "
                            f"({type(err).__name__}: {err})") from None
    if not compute:
        raise DataError(f"{path} holds no points; give at least 3 {{compute, accuracy}} points at distinct compute")
    for i, c in enumerate(compute):
        if not (math.isfinite(c) and c > 0):
            raise DataError(f"{path}: compute {c} (point {i}) must be a positive number (the fits use C ** B); drop "
                            "that point or shift it")
    named = [(f"point {i}", a) for i, a in enumerate(accuracy)] + ([("iteration 0", r0)] if r0 is not None else [])
    for where, a in named:
        if not 0.0 <= a <= 1.0:
            hint = "; accuracy is a fraction: divide percentages by 100" if 1.0 < a <= 100.0 else ""
            raise DataError(f"{path}: accuracy {a} ({where}) lies outside [0, 1]{hint}")
    return compute, accuracy, r0


def falling_warning(compute: Sequence[float], accuracy: Sequence[float]) -> str | None:
    """A warning when accuracy falls as compute grows (least-squares slope against log compute < 0),
    where the sigmoid's ceiling A and its error say nothing; None for a rising or flat curve."""
    import numpy as np

    order = np.argsort(np.asarray(compute, dtype=float))
    c, r = np.log(np.asarray(compute, dtype=float)[order]), np.asarray(accuracy, dtype=float)[order]
    if len(c) < 2 or np.ptp(c) == 0:
        return None
    slope = float(np.polyfit(c, r, 1)[0])
    if slope >= 0:
        return None
    return (f"accuracy FALLS as compute grows ({slope * math.log(10):+.3f} per 10x compute, from {r[0]:.3f} to "
            f"{r[-1]:.3f}); the saturating sigmoid assumes a rising curve, so A, B, C_mid and their errors are "
            "not meaningful here. Check the run (or the column order) before using this fit")


def load_points(path: str | Path) -> tuple[list[float], list[float]]:
    """(compute, accuracy) of ``read_points``."""
    return read_points(path)[:2]


def plot_fits(compute, accuracy, fit: SigmoidFit | None, power: PowerLawFit | None, path: str | Path, *,
              extrapolate: float = 4.0, title: str = "", held_out: Sequence[tuple[float, float]] = ()) -> Path | None:
    """Points, the sigmoid (with its ceiling A) and the power law, extended ``extrapolate`` times further."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return None
    c = np.asarray(compute, dtype=float)
    xs = np.geomspace(c.min(), c.max() * extrapolate, 200)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(c, accuracy, "o", color="k", label="fitted points")
    if held_out:
        ax.plot([h[0] for h in held_out], [h[1] for h in held_out], "s", mfc="none", color="tab:red", label="held out")
    if fit is not None:
        ax.plot(xs, fit.predict(xs), color="tab:blue", label=f"sigmoid: A={fit.a:.3f}, B={fit.b:.2f}, C_mid={fit.c_mid:.3g}")
        ax.axhline(fit.a, color="tab:blue", ls=":", lw=1)
    if power is not None:
        ax.plot(xs, power.predict(xs), color="tab:orange", ls="--", label=f"power law: exponent {power.exponent:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel("training compute")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
