"""The HTML report: self-contained, and working in a real headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from imgenh.html_report import (
    change_scores,
    enrich_report,
    image_extras,
    make_html_report,
    render_html,
    thumbnail_data_uri,
)
from imgenh.quality import FIGURE_NAMES

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium not installed (apt-get install chromium; .ci/run installs it): the page is not run in a browser",
)
HOSTILE_KEY = "x</script><script>document.body.setAttribute('data-pwned','1')</script>.png"


def _report(photo8, gray8) -> dict:
    """A report like `imgenh run --report` writes, with figures and thumbnails per image."""
    images = []
    for i, gain in enumerate((0.6, 1.0, 1.4, 2.0)):
        after = cv2.convertScaleAbs(photo8, alpha=gain)
        images.append(
            {
                "source": f"/in/p{i}.jpg",
                "output": f"/out/p{i}.jpg",
                "key": f"p{i}.jpg",
                "status": "ok",
                "reason": "",
                "seconds": 0.01 * (i + 1),
                "values": [
                    {
                        "step": 0,
                        "op": "white_balance",
                        "illuminant": [0.4, 0.33, 0.27],
                        "gains": [0.8, 1, 1.2],
                    }
                ],
                "notes": [],
                **image_extras(photo8, after),
            }
        )
    grey_alpha = np.dstack([gray8, gray8, gray8, np.full_like(gray8, 128)])
    images.append(
        {
            "source": "/in/g.png",
            "output": "/out/g.png",
            "key": HOSTILE_KEY,
            "status": "ok",
            **image_extras(grey_alpha, gray8),
        }
    )
    images.append(
        {
            "source": "/in/bad.jpg",
            "output": "/out/bad.jpg",
            "key": "bad.jpg",
            "status": "failed",
            "reason": "corrupt JPEG header <b>",
            "seconds": 0.0,
            "values": [],
            "notes": [],
        }
    )
    totals = {"ok": 5, "skipped": 0, "failed": 1, "seconds": 0.5, "exit_code": 1}
    return {
        "imgenh_version": "0.1.0",
        "pipeline": "test",
        "pipeline_hash": "abc",
        "warnings": ["w <1>"],
        "totals": totals,
        "images": images,
    }


def test_page_is_self_contained(photo8, gray8):
    page = render_html(_report(photo8, gray8))
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", page)
    assert "https://" not in page and "http://" not in page
    assert "<script src" not in page and "<link" not in page
    assert "default-src 'none'" in page  # the browser itself refuses any fetch
    assert page.count("data:image/jpeg;base64,") == 10  # 5 before + 5 after thumbnails, no more
    assert "</script><script>document" not in page  # the hostile key cannot close the data element
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    rows = json.loads(data)["rows"]
    assert [r["key"] for r in rows][-2:] == [HOSTILE_KEY, "bad.jpg"]
    assert rows[0]["values"] == "1 white_balance: illuminant R0.4 G0.33 B0.27, gains R0.8 G1 B1.2"


def test_thumbnails_are_small_jpegs_of_any_input(photo16, gray8):
    for pixels in (photo16, gray8, np.dstack([gray8, gray8, gray8, gray8])):
        uri = thumbnail_data_uri(pixels, max_side=40)
        img = cv2.imdecode(
            np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_UNCHANGED
        )
        assert uri.startswith("data:image/jpeg;base64,") and max(img.shape[:2]) == 40 and img.ndim == 3


def test_change_score_points_at_the_outlier():
    base = dict.fromkeys(FIGURE_NAMES, 0.5)
    rows = [{"before": base, "after": {**base, "brightness": 0.5 + d}} for d in (0.01, 0.012, 0.009, 0.2)]
    rows.append({"before": base})
    scores = change_scores(rows)
    assert scores[-1] is None
    assert max(scores[:-1]) == scores[3] and scores[3] > 10 * scores[0]


def test_written_atomically(tmp_path, photo8, gray8):
    target = make_html_report(_report(photo8, gray8), tmp_path / "r.html")
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_enrich_report_reads_sources_and_outputs(tmp_path, photo8):
    cv2.imwrite(str(tmp_path / "a.png"), photo8)
    cv2.imwrite(str(tmp_path / "b.png"), 255 - photo8)
    report = {
        "images": [
            {"source": str(tmp_path / "a.png"), "output": str(tmp_path / "b.png"), "status": "ok"},
            {"source": str(tmp_path / "gone.png"), "output": "", "status": "failed"},
        ]
    }
    rich = enrich_report(report, thumbs=False)
    first, gone = rich["images"]
    assert first["after"]["brightness"] == pytest.approx(1 - first["before"]["brightness"], abs=0.01)
    assert "before" not in gone and "thumbs" not in first


class _Rows(HTMLParser):
    """Collects the body's attributes and each table row's data-key, in document order."""

    def __init__(self):
        super().__init__()
        self.body: dict[str, str] = {}
        self.keys: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "tr" and "data-key" in attrs:
            self.keys.append(attrs["data-key"])


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1400,900", *extra, url,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _load(tmp_path: Path, page: Path, fragment: str) -> _Rows:
    result = _chromium(tmp_path, page.as_uri() + fragment, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    parsed = _Rows()
    parsed.feed(result.stdout)
    assert parsed.body.get("data-ready") == "1", parsed.body
    assert "data-error" not in parsed.body and "data-pwned" not in parsed.body
    return parsed


@requires_chromium
def test_page_in_headless_chromium(tmp_path, photo8, gray8):
    report = _report(photo8, gray8)
    page = make_html_report(report, tmp_path / "report.html")
    plain = _load(tmp_path, page, "")
    assert plain.keys == [image["key"] for image in report["images"]]  # one row per image, run order

    by_change = {
        i["key"]: i["after"]["brightness"] - i["before"]["brightness"]
        for i in report["images"]
        if "after" in i
    }
    expected = sorted(by_change, key=lambda k: -by_change[k]) + ["bad.jpg"]  # no figures: last
    assert _load(tmp_path, page, "#sort=brightness&dir=desc").keys == expected
    after = {i["key"]: i["after"]["brightness"] for i in report["images"] if "after" in i}
    ascending = _load(tmp_path, page, "#sort=brightness&mode=after").keys
    assert ascending == sorted(after, key=after.get) + ["bad.jpg"] and ascending != plain.keys
    assert _load(tmp_path, page, "#filter=failed").keys == ["bad.jpg"]

    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, page.as_uri() + "#sort=change&dir=desc", f"--screenshot={shot}")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    img = cv2.imread(str(shot))
    assert img.shape[:2] == (900, 1400)
    assert img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 500  # text, thumbnails: not blank


def test_run_writes_the_html_page_and_figures_into_the_report(tmp_path, photo8, gray8):
    """`imgenh run --html` and `--figures`: the page has a row per image; the report the figures."""
    import sys

    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.jpg"), photo8)
    cv2.imwrite(str(tmp_path / "in" / "b.png"), gray8)
    (tmp_path / "p.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 1.4\n")
    args = [sys.executable, "-m", "imgenh", "run", "p.yaml", "in", "-o", "out"]
    proc = subprocess.run(
        [*args, "--html", "page.html", "--report", "r.json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "page.html").read_text()
    # rows are drawn from the page's inline data (one entry per image; the Chromium test checks the DOM)
    assert sorted(re.findall(r'"key":"([^"]+)"', page)) == ["a.jpg", "b.png"]
    report = json.loads((tmp_path / "r.json").read_text())
    for image in report["images"]:
        assert set(FIGURE_NAMES) <= set(image["before"]) and set(FIGURE_NAMES) <= set(image["after"])
        assert "thumbs" not in image  # thumbnails only go into the page
    gamma_up = next(i for i in report["images"] if i["key"] == "a.jpg")
    assert gamma_up["after"]["brightness"] > gamma_up["before"]["brightness"]
    plain = subprocess.run(
        [*args, "--overwrite", "--report", "plain.json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert plain.returncode == 0, plain.stderr
    assert all("before" not in i for i in json.loads((tmp_path / "plain.json").read_text())["images"])
    bad = subprocess.run([*args, "--html", "page.txt"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "name the page .html" in bad.stderr
