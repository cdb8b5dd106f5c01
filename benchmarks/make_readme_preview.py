"""Regenerate README's preview picture (docs/preview.png) and its table of quality figures.

Run from the repository root: ``python benchmarks/make_readme_preview.py``. The sheet is
``imgenh preview configs/low_light.yaml sample_images/rocket_dim_warm.jpg --width 1200``;
the table between ``<!-- figures:start -->`` and ``<!-- figures:end -->`` comes from
``imgenh.quality.FIGURES`` (tests/test_stats_cli.py checks it is current).
"""

from __future__ import annotations

import re
from pathlib import Path

from imgenh import load_pipeline, read_image
from imgenh.preview import render_sheet, write_sheet
from imgenh.stats import figure_table

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "configs" / "low_light.yaml"
SAMPLE = ROOT / "sample_images" / "rocket_dim_warm.jpg"
TARGET = ROOT / "docs" / "preview.png"


def main() -> None:
    sheet = render_sheet(load_pipeline(PIPELINE), read_image(SAMPLE), width=1200)
    write_sheet(sheet, TARGET)
    print(
        f"{TARGET.relative_to(ROOT)}: {sheet.pixels.shape[1]}x{sheet.pixels.shape[0]}, {len(sheet.panels)} panels"
    )
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = f"<!-- figures:start -->\n{figure_table()}\n<!-- figures:end -->"
    new = re.sub(r"<!-- figures:start -->.*?<!-- figures:end -->", lambda _: block, text, flags=re.S)
    if new != text:
        readme.write_text(new, encoding="utf-8")
        print("README.md: figures table updated")


if __name__ == "__main__":
    main()
