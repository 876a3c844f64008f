"""ScaleRL sigmoid fits: parameters recovered from noisy curves, extrapolation, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from roadmap.app.cli import main
from roadmap.app.scaling import fit_power_law, fit_sigmoid, load_points, sigmoid


@pytest.mark.parametrize("a,b,c_mid", [(0.8, 1.2, 3e4), (0.62, 2.0, 1e6), (0.95, 0.8, 500.0)])
def test_sigmoid_fit_recovers_parameters_of_noisy_curves(a, b, c_mid):
    rng = np.random.default_rng(0)
    compute = np.geomspace(c_mid / 30, c_mid * 30, 40)
    acc = sigmoid(compute, a, b, c_mid, 0.1) + rng.normal(0, 0.005, compute.size)
    fit = fit_sigmoid(compute, acc, r0=0.1)
    assert fit.a == pytest.approx(a, rel=0.05)
    assert fit.b == pytest.approx(b, rel=0.05)
    assert fit.c_mid == pytest.approx(c_mid, rel=0.05)
    assert fit.a_err > 0 and fit.rmse < 0.01


def test_first_half_predicts_the_last_point_and_warmup_cut():
    rng = np.random.default_rng(1)
    compute = np.geomspace(1e3, 1e6, 20)
    acc = sigmoid(compute, 0.7, 1.0, 2e4, 0.05) + rng.normal(0, 0.004, compute.size)
    fit = fit_sigmoid(compute[:10], acc[:10], r0=0.05)
    assert abs(float(fit.predict(compute[-1])) - acc[-1]) < 0.03
    cut = fit_sigmoid(compute, acc, r0=0.05, warmup_fraction=0.1)
    assert cut.points_used < compute.size
    power = fit_power_law(compute, acc)
    assert power.exponent > 0 and power.rmse > cut.rmse  # no ceiling: the power law fits a plateau worse


def test_bad_points_are_named(tmp_path):
    with pytest.raises(ValueError, match="compute must be positive"):
        fit_sigmoid([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="NaN"):
        fit_sigmoid([1, 2, 3], [0.1, float("nan"), 0.3])
    with pytest.raises(ValueError, match="at least 3"):
        fit_sigmoid([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], warmup_fraction=0.9)
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps([{"c": 1}]))
    with pytest.raises(ValueError, match="'compute' and 'accuracy'"):
        load_points(bad)


def test_fit_command_writes_json_and_plot(tmp_path, capsys):
    compute = np.geomspace(10, 1e4, 12)
    acc = sigmoid(compute, 0.9, 1.5, 300, 0.2)
    pts = tmp_path / "points.json"
    pts.write_text(json.dumps([{"compute": float(c), "accuracy": float(a)} for c, a in zip(compute, acc)]))
    assert main(["fit", str(pts), "--out", str(tmp_path / "fit")]) == 0
    fit = json.loads((tmp_path / "fit" / "fit.json").read_text())["sigmoid"]
    assert fit["a"] == pytest.approx(0.9, rel=0.01)
    assert (tmp_path / "fit" / "fit.png").stat().st_size > 0
    assert "sigmoid" in capsys.readouterr().out


def test_fit_of_a_run_takes_r0_from_iteration_0_and_checks_the_last_point(tmp_path, capsys):
    compute = np.geomspace(1e5, 1e7, 8)
    acc = sigmoid(compute, 0.85, 1.2, 1e6, 0.3)
    rows = [{"iteration": 0, "accuracy": 0.3, "train_compute": 0}]
    rows += [{"iteration": i + 1, "accuracy": float(a), "train_compute": float(c)} for i, (c, a) in enumerate(zip(compute, acc))]
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"config": {}, "iterations": rows}))
    assert main(["fit", str(metrics), "--predict-last", "--out", str(tmp_path / "fit")]) == 0
    out = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert out["sigmoid"]["r0"] == pytest.approx(0.3)  # not the first nonzero-compute point
    assert out["predict_last"]["points_fitted"] == 4
    assert out["predict_last"]["abs_error"] < 0.03
    assert "last point predicted" in capsys.readouterr().out
