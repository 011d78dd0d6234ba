"""Smoke test of `gpudist bench`: tiny cases, JSON report structure, correctness verified."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpudist import cli
from gpudist.bench import cases


def test_bench_smoke_json(tmp_path, capsys):
    path = tmp_path / "report.json"
    rc = cli.main(["bench", "--smoke", "--cases", "blobs2d-*,full*", "--quiet",
                   "--json", str(path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "blobs2d-3x40" in out and "all match scipy" in out

    report = json.loads(path.read_text())
    assert set(report) >= {"meta", "settings", "runners", "missing_peers", "cases", "results",
                           "gpudist_correct", "wall_s"}
    assert report["gpudist_correct"] is True
    meta = report["meta"]
    assert meta["mode"] == "smoke" and meta["threads"] >= 1
    for key in ("git_commit", "torch", "numpy", "scipy", "cpu", "gpu", "date_utc"):
        assert key in meta
    assert [c["name"] for c in report["cases"]] == ["blobs2d-3x40", "full2d-2x16"]

    runners = {r["name"]: r for r in report["runners"]}
    assert any(r["gpudist"] for r in runners.values()) and "scipy" in runners
    assert len(report["results"]) == len(report["cases"]) * len(runners)
    for res in report["results"]:
        if res["status"] != "ok":
            continue
        assert res["median_s"] > 0 and res["repeats"] == len(res["times_s"]) >= 1
        assert "matches" in res  # checked against scipy before timing
        if runners[res["runner"]]["gpudist"]:
            assert res["matches"] and res["no_background_inf"] in (None, True)
        else:
            assert "speedup" in res
    full_scipy = next(r for r in report["results"]
                      if r["case"] == "full2d-2x16" and r["runner"] == "scipy")
    assert full_scipy["no_background_inf"] is False  # scipy's phantom point, not +inf


def test_bench_list_and_bad_pattern(capsys):
    assert cli.main(["bench", "--quick", "--list"]) == 0
    out = capsys.readouterr().out
    assert "blobs3d-192" in out and "blobs2d-64x256" in out  # the foundation issue's cases
    with pytest.raises(SystemExit):
        cli.main(["bench", "--quick", "--cases", "no-such-case"])


@pytest.mark.parametrize("case", cases.quick_cases() + cases.smoke_cases(),
                         ids=lambda c: c.name)
def test_cases_are_seeded(case):
    a, b = case.mask(), case.mask()
    assert a.dtype == np.bool_ and a.shape == case.shape
    np.testing.assert_array_equal(a, b)
    if case.kind not in ("empty", "full"):
        assert 0 < a.mean() < 1


@pytest.mark.parametrize("case", cases.REGIMES, ids=lambda c: c.name)
def test_regime_cases(case):
    """Speck cases hold about their background fraction; label-map cases are one-hot along the
    class dim (every voxel in exactly one class mask), each class present somewhere."""
    mask = case.mask()
    assert mask.shape == case.shape
    np.testing.assert_array_equal(mask, case.mask())
    if case.kind == "specks":
        assert 0.7 * case.params["fraction"] < 1 - mask.mean() < 1.5 * case.params["fraction"]
    else:
        assert (mask.sum(axis=1) == 1).all()
        assert np.moveaxis(mask, 1, 0).reshape(case.classes, -1).any(axis=1).all()
    assert case.min_bytes == mask.size * (5 + 8 * (case.ndim - 1))
