"""`imgenh fit` from the command line: pairs in, a pipeline (and .cube) out, errors measured honestly."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from imgenh import load_pipeline, run_batch
from imgenh.cli import main
from imgenh.cube import read_cube

LOOK = ["white_balance method=manual gains=[1.08,1,0.9]", "gamma value=1.25", "saturation factor=1.3"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """before/ with small copies of the sample photos, after/ the same through a fixed look."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "before").mkdir()
    for path in sorted(SAMPLES.glob("*.jpg")) + sorted(SAMPLES.glob("*.png")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is not None and not path.stem.endswith(("_16bit", "_rgba")):
            cv2.imwrite(str(root / "before" / f"{path.stem}.png"), cv2.resize(img, (160, 120)))
    steps = [
        {"op": "white_balance", "method": "manual", "gains": [1.08, 1, 0.9]},
        {"op": "gamma", "value": 1.25},
        {"op": "saturation", "factor": 1.3},
    ]
    from imgenh import pipeline_from_steps

    summary = run_batch(pipeline_from_steps(steps, format="png"), [str(root / "before")], root / "after")
    assert summary.exit_code == 0
    return root


def fit(root: Path, *args: str):
    return CliRunner().invoke(
        main, ["fit", "--before", str(root / "before"), "--after", str(root / "after"), *args]
    )


def test_fit_writes_a_pipeline_that_reproduces_the_look(pairs, tmp_path):
    out, cube, report = tmp_path / "look.yaml", tmp_path / "look.cube", tmp_path / "fit.json"
    res = fit(pairs, "-o", str(out), "--cube", str(cube), "--report", str(report), "--holdout", "1")
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.startswith("# Fitted by imgenh fit")
    pipeline = load_pipeline(out)  # an ordinary pipeline file
    assert {s.op.name for s in pipeline.steps} <= {"curve", "color_matrix", "lut3d"}
    doc = json.loads(report.read_text())
    held = doc["mean_ciede2000"]["held-out"]
    assert held["fitted"] < 1.5 and held["fitted"] < held["nothing_done"] / 3
    assert read_cube(cube).table.shape == (33, 33, 33, 3)
    assert "held-out" in res.stderr and f"wrote {out}" in res.stderr


def test_fit_needs_two_pairs(pairs, tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    res = CliRunner().invoke(
        main,
        ["fit", "--before", str(pairs / "before"), "--after", str(empty), "-o", str(tmp_path / "x.yaml")],
    )
    assert res.exit_code == 2
    assert "fitting needs at least 2" in res.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_a_rotated_after_is_refused_and_fitting_goes_on(pairs, tmp_path):
    root = tmp_path / "p"
    for side in ("before", "after"):
        (root / side).mkdir(parents=True)
        for f in (pairs / side).glob("*.png"):
            (root / side / f.name).write_bytes(f.read_bytes())
    victim = sorted((root / "after").glob("*.png"))[0]
    img = cv2.imread(str(victim))
    cv2.imwrite(str(victim), np.ascontiguousarray(img[::-1, ::-1]))  # rotated 180 degrees
    res = fit(root, "-o", str(tmp_path / "look.yaml"))
    assert res.exit_code == 0, res.output
    assert f"refused {victim.stem}" in res.stderr
    assert "1 refused" in (tmp_path / "look.yaml").read_text()


def test_python_api_fits_like_the_cli(pairs, tmp_path):
    # imgenh.fit_folders is `imgenh fit` in one call: the same text, the same errors.
    import imgenh

    spec = tmp_path / "my.yaml"
    spec.write_text("version: 1\nsteps:\n  - op: gamma\n    value: {fit: [0.5, 3.0]}\n")
    fitted = imgenh.fit_folders(pairs / "before", pairs / "after", pipeline=spec, holdout=1, budget=40)
    (tmp_path / "tuned.yaml").write_text(fitted.pipeline_text())
    gamma = load_pipeline(tmp_path / "tuned.yaml").steps[0].params["value"]
    assert (
        1.1 < gamma < 1.45
    )  # the hidden edit's gamma is 1.25; white balance and saturation are not in my.yaml
    errors = fitted.report()["mean_ciede2000"]
    assert errors["held-out"]["fitted"] < errors["held-out"]["nothing_done"]
    assert (
        fit(pairs, str(spec), "--holdout", "1", "--budget", "40", "-o", str(tmp_path / "cli.yaml")).exit_code
        == 0
    )
    assert (tmp_path / "cli.yaml").read_text() == (tmp_path / "tuned.yaml").read_text()


def test_a_file_the_pipeline_names_stays_relative_in_the_tuned_file(pairs, tmp_path):
    # Paths in a pipeline file are read from its own folder: the tuned file, written elsewhere,
    # names the same .cube relative to where it is written, so the two can move together.
    from imgenh.cube import CubeLut, identity_table, write_cube

    project = tmp_path / "project"
    (project / "luts").mkdir(parents=True)
    write_cube(project / "luts" / "look.cube", CubeLut(identity_table(2)))
    spec = project / "my.yaml"
    spec.write_text("version: 1\nsteps:\n  - op: lut3d\n    file: luts/look.cube\n"
                    "  - op: gamma\n    value: {fit: [0.5, 3.0]}\n")  # fmt: skip
    out = project / "tuned" / "tuned.yaml"
    out.parent.mkdir()
    res = fit(pairs, str(spec), "--holdout", "1", "--budget", "20", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "file: ../luts/look.cube" in out.read_text()
    assert load_pipeline(out).steps[0].params["file"] == str(project / "luts" / "look.cube")
