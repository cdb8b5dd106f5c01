"""Built-in pipelines ship inside the package: `imgenh run default`, `imgenh configs` (issue 9, point 15)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner
from helpers import invoke_in

from imgenh import load_pipeline
from imgenh.cli import main
from imgenh.ops.describe import pipelines_table
from imgenh.pipeline_file import builtin_pipelines
from imgenh.pipeline_ref import CONFIG_DIR, builtin_names

ROOT = Path(__file__).resolve().parent.parent


def invoke(args, cwd: Path):
    return invoke_in(cwd, args)


@pytest.fixture
def photos(tmp_path, photo8) -> Path:
    """A folder with one small photo, and nothing else around it (no configs/ folder)."""
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.jpg"), photo8)
    return tmp_path


def test_one_home_the_package_folder_and_the_repository_link():
    assert (ROOT / "configs").is_symlink() and (ROOT / "configs").resolve() == CONFIG_DIR
    assert CONFIG_DIR == ROOT / "imgenh" / "configs"
    assert set(builtin_names()) >= {"default", "low_light", "color_cast", "scanned_documents"}


def test_pyproject_ships_every_built_in_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "imgenh"
    ]
    shipped = {p for pattern in data for p in (ROOT / "imgenh").glob(pattern)}
    assert shipped == set(CONFIG_DIR.iterdir())


def test_run_a_built_in_by_name_outside_the_repository(photos):
    by_name = invoke(["run", "default", "photos", "-o", "out1"], photos)
    assert by_name.exit_code == 0, by_name.output
    by_path = invoke(["run", str(ROOT / "configs" / "default.yaml"), "photos", "-o", "out2"], photos)
    assert by_path.exit_code == 0, by_path.output
    assert (photos / "out1" / "a.jpg").read_bytes() == (photos / "out2" / "a.jpg").read_bytes()


def test_configs_lists_names_with_what_each_is_for():
    res = CliRunner().invoke(main, ["configs"])
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert [line.split()[0] for line in lines] == builtin_names()
    default = next(line for line in lines if line.startswith("default "))
    shipped = load_pipeline(CONFIG_DIR / "default.yaml")
    steps = ", ".join(dict.fromkeys(s.op.name for s in shipped.steps))
    assert default.split(None, 1)[1].startswith("A safe, general improvement for everyday photos")
    assert default.endswith(f"({steps})")


def test_configs_show_prints_the_file_to_start_your_own(photos):
    res = invoke(["configs", "show", "low_light"], photos)
    assert res.stdout == (CONFIG_DIR / "low_light.yaml").read_text()
    (photos / "my.yaml").write_text(res.stdout)
    names = [s.op.name for s in load_pipeline(CONFIG_DIR / "low_light.yaml").steps]
    expected = f"ok: my.yaml ({len(names)} steps: {', '.join(names)})\n"
    assert invoke(["validate", "my.yaml"], photos).stdout == expected


def test_unknown_names_list_the_built_ins_and_the_nearest(photos):
    res = invoke(["run", "defualt", "photos", "-o", "out"], photos)
    assert res.exit_code == 2 and not (photos / "out").exists()
    assert res.stderr.startswith(
        "imgenh: error: defualt: no such pipeline file, and not a built-in pipeline; did you mean 'default'? "
        "(built-ins: color_cast, dataset_normalize, default,"
    )
    res = invoke(["configs", "show", "lowlight"], photos)
    assert res.exit_code == 2 and "not a built-in pipeline; did you mean 'low_light'?" in res.stderr


def test_a_file_wins_over_a_built_in_of_the_same_name(photos):
    (photos / "default").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 1.5\n")
    assert invoke(["validate", "default"], photos).stdout == "ok: default (1 step: gamma)\n"
    assert invoke(["validate", "low-light"], photos).exit_code == 0  # - and _ alike
    shipped = [s.op.name for s in load_pipeline(CONFIG_DIR / "default.yaml").steps]
    assert [s.op.name for s in load_pipeline("default").steps] == shipped  # outside that folder: the built-in


def test_a_missing_path_to_a_built_in_says_to_use_the_name(photos):
    res = invoke(["run", "configs/default.yaml", "photos", "-o", "out"], photos)
    assert res.exit_code == 2
    assert res.stderr == (
        "imgenh: error: configs/default.yaml: cannot read pipeline file: No such file or directory; "
        "a built-in has that name: use `default` instead of the path\n"
    )


def test_readme_lists_the_built_ins_as_imgenh_configs_does():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- configs:start -->") + len("<!-- configs:start -->")
    table = readme[start : readme.index("<!-- configs:end -->")].strip()
    assert table == pipelines_table(builtin_pipelines(), markdown=True), "run `imgenh configs --markdown`"


def test_a_folder_given_as_the_pipeline_is_named_as_such(photos):
    res = invoke(["run", "photos", "more", "-o", "out"], photos)
    assert res.exit_code == 2
    assert res.stderr == (
        "imgenh: error: photos: is a folder, not a pipeline (a YAML file or a built-in name; or -s steps)\n"
    )
