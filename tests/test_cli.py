"""The command line: exit codes, messages, input discovery, output layout, dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import invoke_in

from imgenh import __version__, executors
from imgenh.ops import REGISTRY
from imgenh.ops.describe import operator_table
from imgenh.plan import Job
from imgenh.runner import RunOptions

GAMMA = "version: 1\nname: g\nsteps:\n  - op: gamma\n    value: 1.5\n"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tree(tmp_path, photo8) -> Path:
    """photos/{a.jpg, b.PNG, sub/c.jpeg, sub/deeper/d.png, notes.txt} and a pipeline file."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    cv2.imwrite(str(root / "a.jpg"), photo8)
    cv2.imwrite(str(root / "b.PNG"), photo8[:, :, 0])
    cv2.imwrite(str(root / "sub" / "c.jpeg"), photo8)
    cv2.imwrite(str(root / "sub" / "deeper" / "d.png"), photo8)
    (root / "notes.txt").write_text("not an image")
    (tmp_path / "p.yaml").write_text(GAMMA)
    return tmp_path


def invoke(runner, args, cwd=None, **kw):
    return invoke_in(cwd, args, runner, **kw)


def outputs(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and ".imgenh" not in p.parts
    )


def test_run_mirrors_folder_and_reports_summary(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "-j", "1"], cwd=tree)
    assert res.exit_code == 0, res.output
    assert outputs(tree / "out") == ["a.jpg", "b.PNG"]
    assert "2 processed, 0 skipped, 0 failed" in res.stderr


def test_recursive_mirrors_subfolders(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--recursive"], cwd=tree)
    assert res.exit_code == 0, res.output
    assert outputs(tree / "out") == ["a.jpg", "b.PNG", "sub/c.jpeg", "sub/deeper/d.png"]
    img = cv2.imread(str(tree / "out" / "sub" / "deeper" / "d.png"), cv2.IMREAD_UNCHANGED)
    src = cv2.imread(str(tree / "photos" / "sub" / "deeper" / "d.png"), cv2.IMREAD_UNCHANGED)
    expected = np.rint(255 * (src / 255.0) ** (1 / 1.5))
    assert np.abs(img - expected).max() <= 1


def test_glob_include_exclude_and_case_insensitive_extensions(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos/**/*", "-o", "out", "--exclude", "d.*"], cwd=tree)
    assert res.exit_code == 0, res.output
    assert outputs(tree / "out") == ["a.jpg", "b.PNG", "sub/c.jpeg"]
    res = invoke(runner, ["run", "p.yaml", "photos", "-r", "-o", "out2", "--include", "*.png"], cwd=tree)
    assert outputs(tree / "out2") == ["b.PNG", "sub/deeper/d.png"]


def test_pattern_matching_nothing_warns_but_runs(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos/a.jpg", "nothing/*.jpg", "-o", "out"], cwd=tree)
    assert res.exit_code == 0
    assert "pattern 'nothing/*.jpg' matched no images" in res.stderr


def test_no_images_at_all_is_exit_2(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "nothing/*.jpg", "-o", "out"], cwd=tree)
    assert res.exit_code == 2
    assert "no images found" in res.stderr


def test_files_from_stdin(runner, tree):
    res = invoke(
        runner,
        ["run", "p.yaml", "--files-from", "-", "-o", "out"],
        cwd=tree,
        input="photos/a.jpg\n# a comment\n\nphotos/sub/c.jpeg\n",
    )
    assert res.exit_code == 0, res.output
    # Relative paths keep their folders (like rsync --files-from), so same names never collide.
    assert outputs(tree / "out") == ["photos/a.jpg", "photos/sub/c.jpeg"]


def test_colliding_outputs_are_refused_before_any_work(runner, tree):
    res = invoke(
        runner,
        [
            "run",
            "p.yaml",
            "photos/a.jpg",
            "photos/sub/c.jpeg",
            "photos/sub/deeper/d.png",
            "photos/b.PNG",
            "-o",
            "out",
            "--format",
            "png",
        ],
        cwd=tree,
    )
    assert res.exit_code == 0, "different stems do not collide"
    (tree / "x").mkdir()
    cv2.imwrite(str(tree / "x" / "a.png"), np.zeros((4, 4), np.uint8))
    res = invoke(
        runner, ["run", "p.yaml", "photos/a.jpg", "x/a.png", "-o", "out3", "--format", "png"], cwd=tree
    )
    assert res.exit_code == 2
    assert "2 inputs would be written to the same output a.png" in res.stderr
    assert not (tree / "out3").exists()


def test_output_inside_input_is_refused_unless_excluded(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-r", "-o", "photos/enhanced"], cwd=tree)
    assert res.exit_code == 2
    assert "is inside input folder photos" in res.stderr
    # The way out offered keeps the originals: another -o, or excluding the output folder.
    assert "--in-place" not in res.stderr
    assert "Choose an -o outside photos, such as -o photos_enhanced" in res.stderr
    assert "or, to keep it there, --exclude 'enhanced/'" in res.stderr
    assert not (tree / "photos" / "enhanced").exists()
    for exclude in ("enhanced/", "enhanced", "/enhanced"):
        res = invoke(
            runner, ["run", "p.yaml", "photos", "-r", "-o", "photos/enhanced", "--exclude", exclude], cwd=tree
        )
        assert res.exit_code == 0, (exclude, res.output)
    # The outputs are never read back as inputs: a re-run skips the four images, finds no new ones.
    assert "0 processed, 4 skipped, 0 failed" in res.stderr
    assert outputs(tree / "photos" / "enhanced") == ["a.jpg", "b.PNG", "sub/c.jpeg", "sub/deeper/d.png"]
    # Deeper output folders are suggested anchored; an exclude that misses it is still refused.
    res = invoke(
        runner, ["run", "p.yaml", "photos", "-r", "-o", "photos/sub/out", "--exclude", "out/*.jpg"], cwd=tree
    )
    assert res.exit_code == 2 and "--exclude 'sub/out/'" in res.stderr


def test_in_place_replaces_inputs(runner, tree):
    before = cv2.imread(str(tree / "photos" / "a.jpg"))
    res = invoke(runner, ["run", "p.yaml", "photos/a.jpg", "--in-place"], cwd=tree)
    assert res.exit_code == 0, res.output
    after = cv2.imread(str(tree / "photos" / "a.jpg"))
    assert after.mean() > before.mean() + 5  # gamma 1.5 brightened it
    assert "--in-place" in res.stderr
    assert not list((tree / "photos").glob(".*imgenh-tmp"))


def test_existing_output_is_skipped_then_overwritten(runner, tree):
    out = tree / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"mine")
    res = invoke(runner, ["run", "p.yaml", "photos/a.jpg", "-o", "out"], cwd=tree)
    assert res.exit_code == 0 and "0 processed, 1 skipped" in res.stderr
    assert (out / "a.jpg").read_bytes() == b"mine"
    res = invoke(runner, ["run", "p.yaml", "photos/a.jpg", "-o", "out", "--overwrite"], cwd=tree)
    assert "1 processed" in res.stderr
    assert cv2.imread(str(out / "a.jpg")) is not None


def test_overrides_format_quality_suffix(runner, tree):
    res = invoke(
        runner,
        [
            "run",
            "p.yaml",
            "photos/a.jpg",
            "-o",
            "out",
            "--format",
            "webp",
            "--quality",
            "50",
            "--suffix",
            "_enh",
        ],
        cwd=tree,
    )
    assert res.exit_code == 0, res.output
    assert outputs(tree / "out") == ["a_enh.webp"]
    res = invoke(runner, ["run", "p.yaml", "photos/a.jpg", "-o", "out", "--quality", "0"], cwd=tree)
    assert res.exit_code == 2 and "--quality: must be >= 1 (got 0)" in res.stderr


def test_dry_run_prints_plan_and_touches_nothing(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--dry-run"], cwd=tree)
    assert res.exit_code == 0
    assert f"process  photos{os.sep}a.jpg -> out{os.sep}a.jpg  (new)" in res.stdout
    assert not (tree / "out").exists()


def test_failed_image_gives_exit_1_and_others_still_done(runner, tree):
    (tree / "photos" / "broken.jpg").write_text("<html>not a jpeg</html>")
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--report", "r.json"], cwd=tree)
    assert res.exit_code == 1
    assert "broken.jpg: not a supported image" in res.stderr
    assert outputs(tree / "out") == ["a.jpg", "b.PNG"]
    report = json.loads((tree / "r.json").read_text())
    assert report["totals"]["failed"] == 1 and report["totals"]["ok"] == 2
    assert report["imgenh_version"] == __version__


def test_report_to_stdout_is_pure_json(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--report", "-", "-v"], cwd=tree)
    doc = json.loads(res.stdout)
    assert {i["status"] for i in doc["images"]} == {"ok"}
    assert "imgenh: info" in res.stderr


def test_missing_output_and_bad_pipeline_are_usage_errors(runner, tree):
    assert invoke(runner, ["run", "p.yaml", "photos"], cwd=tree).exit_code == 2
    (tree / "bad.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 0\n")
    res = invoke(runner, ["run", "bad.yaml", "photos", "-o", "out"], cwd=tree)
    assert res.exit_code == 2
    assert "bad.yaml:4: steps[0] gamma.value: must be > 0 (got 0)" in res.stderr
    assert invoke(runner, ["run", "nope.yaml", "photos", "-o", "out"], cwd=tree).exit_code == 2


def test_validate_exit_codes_and_messages(runner, tree):
    (tree / "bad.yaml").write_text("version: 1\nsteps:\n  - op: gamm\n")
    res = invoke(runner, ["validate", "p.yaml"], cwd=tree)
    assert res.exit_code == 0 and "ok: p.yaml (1 step: gamma)" in res.stdout
    res = invoke(runner, ["validate", "p.yaml", "bad.yaml"], cwd=tree)
    assert res.exit_code == 2
    assert "bad.yaml:3: steps[0].op: unknown operator 'gamm'; did you mean 'gamma'?" in res.stderr


def test_ops_lists_every_operator_and_shows_one(runner):
    res = invoke(runner, ["ops"])
    assert res.exit_code == 0
    assert {line.split()[0] for line in res.stdout.splitlines()} == set(REGISTRY)
    res = invoke(runner, ["ops", "gamma"])
    assert "formula:" in res.stdout and "reference: ImageMagick -gamma" in res.stdout
    assert "example step:" in res.stdout and "op: gamma" in res.stdout
    res = invoke(runner, ["ops", "gama"])
    assert res.exit_code == 2 and "did you mean 'gamma'" in res.stderr


def test_every_operator_example_step_is_valid(runner, tmp_path):
    import yaml

    from imgenh.pipeline_file import parse_pipeline

    for name, spec in REGISTRY.items():
        text = yaml.safe_dump({"version": 1, "steps": [spec.example_step()]})
        assert parse_pipeline(text, name).steps[0].op.name == name


def test_readme_operator_table_is_current():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("<!-- operators:start -->") + len("<!-- operators:start -->")
    end = readme.index("<!-- operators:end -->")
    assert readme[start:end].strip() == operator_table(), (
        "README operator table is stale: run `imgenh ops --markdown`"
    )


def test_version_help_and_python_dash_m(runner):
    assert invoke(runner, ["--version"]).output.strip() == f"imgenh, version {__version__}"
    for cmd in (
        ["--help"],
        ["run", "--help"],
        ["validate", "--help"],
        ["ops", "--help"],
        ["schema", "--help"],
    ):
        res = invoke(runner, cmd)
        assert res.exit_code == 0 and "Example" in res.output, cmd
    proc = subprocess.run([sys.executable, "-m", "imgenh", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_schema_command_prints_json(runner):
    doc = json.loads(invoke(runner, ["schema"]).stdout)
    assert doc["required"] == ["version", "steps"]


def test_in_place_keeps_permissions_and_symlinks_and_processes_each_file_once(runner, tree):
    photos = tree / "photos"
    os.chmod(photos / "a.jpg", 0o600)
    (photos / "link.jpg").symlink_to("a.jpg")
    before = cv2.imread(str(photos / "a.jpg")).astype(float)
    res = invoke(
        runner,
        [
            "run",
            "p.yaml",
            "photos/a.jpg",
            "photos/link.jpg",
            "../" + tree.name + "/photos/a.jpg",
            "--in-place",
            "-j",
            "1",
        ],
        cwd=tree,
    )
    assert res.exit_code == 0, res.output
    assert "1 processed" in res.stderr
    assert (photos / "link.jpg").is_symlink()
    assert oct(os.stat(photos / "a.jpg").st_mode & 0o777) == "0o600"
    after = cv2.imread(str(photos / "a.jpg")).astype(float)
    once = np.rint(255 * (before / 255) ** (1 / 1.5))
    twice = np.rint(255 * (before / 255) ** (1 / 2.25))
    assert np.abs(after - once).mean() < 0.5 * np.abs(after - twice).mean()  # JPEG noise aside


def test_glob_extension_is_case_insensitive(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos/*.JPG", "photos/*.png", "-o", "out"], cwd=tree)
    assert res.exit_code == 0, res.output
    assert outputs(tree / "out") == ["a.jpg", "b.PNG"]


def test_missing_named_input_fails_that_image(runner, tree):
    res = invoke(
        runner,
        ["run", "p.yaml", "photos/a.jpg", "photos/gone.jpg", "-o", "out", "--report", "r.json"],
        cwd=tree,
    )
    assert res.exit_code == 1
    assert "gone.jpg: no such file or folder" in res.stderr
    report = json.loads((tree / "r.json").read_text())
    assert [i["status"] for i in report["images"] if i["source"].endswith("gone.jpg")] == ["failed"]


def test_plan_error_shows_the_warnings_that_explain_it(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos/*.gif", "-o", "out"], cwd=tree)
    assert res.exit_code == 2
    assert "warning: pattern 'photos/*.gif' matched no images" in res.stderr
    assert "error: no images found" in res.stderr


def test_report_folder_must_exist_and_failed_report_is_not_success(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--report", "nope/r.json"], cwd=tree)
    assert res.exit_code == 2 and "folder nope does not exist" in res.stderr
    assert not (tree / "out").exists()
    (tree / "r.json").mkdir()  # a folder where the report file should go
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--report", "r.json"], cwd=tree)
    assert res.exit_code == 2 and "--report r.json is a folder" in res.stderr
    # A report inside the output folder a first run creates is fine.
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "new", "--report", "new/r.json"], cwd=tree)
    assert res.exit_code == 0 and (tree / "new" / "r.json").is_file()


def test_a_report_that_cannot_be_written_is_not_success(runner, tree, monkeypatch):
    def full_disk(target, summary):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("imgenh.cli.run.write_report", full_disk)
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--report", "r.json"], cwd=tree)
    assert res.exit_code == 1 and "cannot write report r.json" in res.stderr


def test_files_from_accepts_names_that_are_not_utf8(runner, tree):
    name = b"caf\xe9.jpg"  # Latin-1
    (tree / "photos").joinpath(os.fsdecode(name)).write_bytes((tree / "photos" / "a.jpg").read_bytes())
    (tree / "list.txt").write_bytes(b"photos/" + name + b"\n")
    res = invoke(runner, ["run", "p.yaml", "--files-from", "list.txt", "-o", "out"], cwd=tree)
    assert res.exit_code == 0, res.output
    assert os.listdir(os.fsencode(tree / "out" / "photos")) == [name]


def test_dry_run_report_is_json_plan(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--dry-run", "--report", "-"], cwd=tree)
    doc = json.loads(res.stdout)
    assert {i["status"] for i in doc["images"]} == {"planned"}
    assert not (tree / "out").exists()


def test_numbers_written_without_a_dot_are_numbers(runner, tree):
    (tree / "e.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 1e0\n")
    assert invoke(runner, ["validate", "e.yaml"], cwd=tree).exit_code == 0


def test_outputs_of_another_imgenh_version_are_redone(runner, tree, monkeypatch):
    assert invoke(runner, ["run", "p.yaml", "photos", "-o", "out"], cwd=tree).exit_code == 0
    monkeypatch.setattr("imgenh.runner.__version__", "9.9.9")
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--dry-run"], cwd=tree)
    assert "(made by imgenh 0.1.0)" in res.stdout


def test_operator_error_names_the_image_and_the_step(runner, tree):
    (tree / "wb.yaml").write_text(
        "version: 1\nsteps:\n  - op: white_balance\n    method: manual\n    white_at: [5000, 1]\n"
    )
    res = invoke(runner, ["run", "wb.yaml", "photos/a.jpg", "-o", "out"], cwd=tree)
    assert res.exit_code == 1
    assert "a.jpg: steps[0] white_balance.white_at: " in res.stderr and "internal error" not in res.stderr


def test_progress_bar_forced_on_and_small_batch_runs_in_process(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--progress", "-v"], cwd=tree)
    assert res.exit_code == 0
    assert "2/2" in res.stderr and "img/s" in res.stderr  # tqdm's bar, though stderr is no terminal
    assert "2 to process with 1 worker," in res.stderr  # too small a batch for a pool
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out2", "--no-progress"], cwd=tree)
    assert "img/s" not in res.stderr


def test_in_place_runs_lock_the_folders(runner, tree):
    from imgenh.state import lock_folders

    fds = lock_folders({(tree / "photos").resolve()})
    try:
        res = invoke(runner, ["run", "p.yaml", "photos/a.jpg", "--in-place"], cwd=tree)
    finally:
        for fd in fds:
            os.close(fd)
    assert res.exit_code == 75 and "being changed in place by another imgenh run" in res.stderr


def test_in_place_refuses_hard_links_and_symlinks_leaving_the_folder(runner, tree):
    photos = tree / "photos"
    os.link(photos / "a.jpg", photos / "hard.jpg")
    (tree / "elsewhere").mkdir()
    cv2.imwrite(str(tree / "elsewhere" / "e.jpg"), np.zeros((8, 8, 3), np.uint8))
    (photos / "out.jpg").symlink_to(tree / "elsewhere" / "e.jpg")
    before = (tree / "elsewhere" / "e.jpg").read_bytes()
    res = invoke(runner, ["run", "p.yaml", "photos", "--in-place"], cwd=tree)
    assert res.exit_code == 1
    assert "hard.jpg: has 2 hard links" in res.stderr
    assert "outside input folder" in res.stderr
    assert (tree / "elsewhere" / "e.jpg").read_bytes() == before
    assert os.stat(photos / "a.jpg").st_nlink == 2  # the link was not split


def test_an_output_changed_by_someone_else_is_not_overwritten(runner, tree):
    assert invoke(runner, ["run", "p.yaml", "photos", "-o", "out"], cwd=tree).exit_code == 0
    (tree / "out" / "a.jpg").write_bytes(b"retouched by hand")
    (tree / "p.yaml").write_text(GAMMA.replace("1.5", "1.6"))  # even when the pipeline changes
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--dry-run"], cwd=tree)
    assert "(output changed since imgenh wrote it (--overwrite replaces it))" in res.stdout
    assert invoke(runner, ["run", "p.yaml", "photos", "-o", "out"], cwd=tree).exit_code == 0
    assert (tree / "out" / "a.jpg").read_bytes() == b"retouched by hand"


def test_discovery_hints(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--dry-run"], cwd=tree)
    assert "folder 'photos' has 1 subfolder(s) not searched (add --recursive)" in res.stderr
    res = invoke(runner, ["run", "p.yaml", "photos", "-r", "-o", "out", "--include", "photos/*"], cwd=tree)
    assert res.exit_code == 2 and "--include/--exclude left none of the 4 images found" in res.stderr
    res = invoke(runner, ["run", "p.yaml", "photos", "photos/sub", "-r", "-o", "out"], cwd=tree)
    assert "4 processed" in res.stderr  # photos/sub is inside photos: each file once


def test_dry_run_exit_code_counts_known_failures(runner, tree):
    res = invoke(
        runner, ["run", "p.yaml", "photos/a.jpg", "photos/gone.jpg", "-o", "out", "--dry-run"], cwd=tree
    )
    assert res.exit_code == 1
    assert "dry run: 1 to process, 0 to skip, 1 failing; nothing written" in res.stderr


def test_forgiving_spelling_in_pipelines_and_flags(runner, tree):
    (tree / "q.yaml").write_text(
        "version: 1\nsteps:\n  - op: clahe\n    tiles: '8'\n  - op: GAMMA\n    value: 1e400\n"
        "description: [1]\n"
    )
    res = invoke(runner, ["validate", "q.yaml"], cwd=tree)
    assert "steps[1].op: unknown operator 'GAMMA'; did you mean 'gamma'?" in res.stderr
    assert "tiles" not in res.stderr  # a quoted whole number is a number
    assert "description: must be a string (got [1])" in res.stderr
    res = invoke(runner, ["run", "p.yaml", "photos/a.jpg", "-o", "out", "--format", "JPEG"], cwd=tree)
    assert res.exit_code == 0 and outputs(tree / "out") == ["a.jpg"]
    (tree / "r.yaml").write_text("version: 1\nsteps:\n  - op: resize\n")
    res = invoke(runner, ["validate", "r.yaml"], cwd=tree)
    assert "steps[0] resize: set exactly one of" in res.stderr


def test_python_api_takes_one_folder_as_a_string(tree):
    from imgenh import RunOptions, load_pipeline, run_batch

    summary = run_batch(
        load_pipeline(tree / "p.yaml"), str(tree / "photos"), tree / "api", RunOptions(jobs=1)
    )
    assert summary.count("ok") == 2 and summary.exit_code == 0


def test_a_touched_input_is_hashed_once_then_known_again(runner, tree):
    assert invoke(runner, ["run", "p.yaml", "photos", "-o", "out"], cwd=tree).exit_code == 0
    os.utime(tree / "photos" / "a.jpg", ns=(1, 1))
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--dry-run"], cwd=tree)
    assert "a.jpg  (up to date (same content, new mtime))" in res.stdout
    assert invoke(runner, ["run", "p.yaml", "photos", "-o", "out"], cwd=tree).exit_code == 0
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--dry-run"], cwd=tree)
    assert f"skip     photos{os.sep}a.jpg  (up to date)" in res.stdout


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgenh", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_click_errors_use_imgenh_error_style(tree):
    proc = _cli(tree, "run", "p.yaml", "photos", "-o", "out", "-j", "0")
    assert proc.returncode == 2
    assert proc.stderr.startswith("imgenh: error: ") and "--jobs" in proc.stderr
    assert "imgenh run --help" in proc.stderr and "Traceback" not in proc.stderr
    unknown = _cli(tree, "run", "--nope")
    assert unknown.returncode == 2 and unknown.stderr.startswith("imgenh: error: No such option")


def test_help_lists_whole_command_descriptions(tree):
    proc = _cli(tree, "--help")
    assert proc.returncode == 0
    commands = proc.stdout.split("Commands:")[1]
    assert "..." not in commands
    assert "Run PIPELINE over images: files, folders and quoted glob patterns." in " ".join(
        proc.stdout.split()
    )


# --- what new users hit (issue 9) ---------------------------------------------------------


def test_files_from_null_separated_list(runner, tree):
    names = b"photos/a.jpg\0photos/sub/c.jpeg\0"
    res = invoke(runner, ["run", "p.yaml", "--files-from", "-", "-0", "-o", "out"], cwd=tree, input=names)
    assert res.exit_code == 0, res.output
    assert outputs(tree / "out") == ["photos/a.jpg", "photos/sub/c.jpeg"]


def test_nul_in_a_newline_list_is_a_usage_error(runner, tree):
    res = invoke(
        runner, ["run", "p.yaml", "--files-from", "-", "-o", "out"], cwd=tree, input=b"photos/a.jpg\0"
    )
    assert res.exit_code == 2
    assert "--files-from -: holds NUL bytes" in res.stderr and "-0/--null" in res.stderr
    assert not (tree / "out").exists()


def test_csv_report_has_a_row_per_image(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-r", "-o", "out", "--report", "run.csv"], cwd=tree)
    assert res.exit_code == 0, res.output
    import csv

    rows = list(csv.DictReader((tree / "run.csv").open()))
    assert sorted(r["key"] for r in rows) == ["a.jpg", "b.PNG", "sub/c.jpeg", "sub/deeper/d.png"]
    assert {r["status"] for r in rows} == {"ok"}


def test_unknown_report_extension_is_refused_before_any_work(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--report", "run.txt"], cwd=tree)
    assert res.exit_code == 2
    assert "unknown report format '.txt'" in res.stderr
    assert not (tree / "out").exists()


def test_every_printed_warning_is_in_the_report(runner, tree, photo8):
    rgba = np.dstack([photo8, np.full(photo8.shape[:2], 128, np.uint8)])
    cv2.imwrite(str(tree / "photos" / "alpha.png"), rgba)
    cv2.imwrite(str(tree / "photos" / "deep.png"), photo8.astype(np.uint16) * 257)
    args = ["run", "p.yaml", "photos", "-o", "out", "--format", "jpg", "--report", "r.json"]
    res = invoke(runner, args, cwd=tree)
    assert res.exit_code == 0, res.output
    report = json.loads((tree / "r.json").read_text())
    printed = [
        line.removeprefix("imgenh: warning: ") for line in res.stderr.splitlines() if "warning:" in line
    ]
    assert printed
    for line in printed:
        note = line.split(" (first: ")[0]
        assert any(w.startswith(note) for w in report["warnings"]), (line, report["warnings"])
    assert any(w.startswith("alpha flattened onto white") for w in report["warnings"])
    assert any(w.startswith("16-bit image written as 8-bit") for w in report["warnings"])


def test_dry_run_totals_count_the_planned_images(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-r", "-o", "out", "-n", "--report", "r.json"], cwd=tree)
    assert res.exit_code == 0
    assert json.loads((tree / "r.json").read_text())["totals"]["planned"] == 4


def test_outputs_edited_outside_imgenh_are_named_in_a_warning(runner, tree):
    assert invoke(runner, ["run", "p.yaml", "photos", "-o", "out"], cwd=tree).exit_code == 0
    edited = tree / "out" / "a.jpg"
    edited.write_bytes(edited.read_bytes() + b"\0")  # someone touched it up
    (tree / "photos" / "a.jpg").touch()  # and the input changed: it would be redone
    os.utime(tree / "photos" / "a.jpg", ns=(1, 1))
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "--report", "r.json"], cwd=tree)
    assert res.exit_code == 0
    assert (
        "1 existing output changed since imgenh wrote it left as it is (--overwrite replaces it)"
        in res.stderr
    )
    assert "a.jpg" in res.stderr
    report = json.loads((tree / "r.json").read_text())
    assert any("changed since imgenh wrote" in w for w in report["warnings"])


def test_missing_input_folder_is_a_usage_error_that_writes_nothing(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "/mnt/unmounted/photos", "-o", "out"], cwd=tree)
    assert res.exit_code == 2
    assert "input folder '/mnt/unmounted/photos' does not exist" in res.stderr
    assert not (tree / "out").exists()
    missing_file = invoke(runner, ["run", "p.yaml", "photos", "gone.jpg", "-o", "out"], cwd=tree)
    assert missing_file.exit_code == 1  # a missing named file stays a failed image


def test_verbose_lines_carry_time_and_progress(runner, tree):
    res = invoke(runner, ["run", "p.yaml", "photos", "-r", "-o", "out", "-v"], cwd=tree)
    assert res.exit_code == 0
    lines = [line for line in res.stderr.splitlines() if " -> " in line]
    assert len(lines) == 4
    import re

    assert all(re.match(r"imgenh: info: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d \[\d/4\] ", line) for line in lines)
    assert "4 images: 4 to process with 1 worker, 0 to skip" in res.stderr
    one = invoke(runner, ["run", "p.yaml", "photos/a.jpg", "-o", "out2", "-v"], cwd=tree)
    assert "1 image: 1 to process" in one.stderr


def test_version_and_help_of_the_group_load_no_image_libraries():
    """`imgenh --version` (and a Ctrl-C at start-up) need neither numpy nor OpenCV: commands load on first use."""
    code = (
        "import sys\nfrom imgenh.cli import run_cli\n"
        "try:\n    run_cli(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('cv2', 'numpy', 'imgenh.pipeline') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


# -j: an explicit worker count is honoured, and says so when it costs time --------------------


def test_explicit_jobs_over_the_cores_on_a_small_batch_is_honoured_with_one_warning(
    runner, tree, monkeypatch
):
    monkeypatch.setattr(executors, "usable_cores", lambda: 1)  # as on a 1-core machine
    args = ["run", "p.yaml", "photos", "-o", "out", "-j", "2", "-v", "--report", "r.json"]
    res = invoke(runner, args, cwd=tree)
    assert res.exit_code == 0, res.output
    assert "2 images: 2 to process with 2 workers" in res.stderr  # the pool really ran
    assert outputs(tree / "out") == ["a.jpg", "b.PNG"]
    warned = [line for line in res.stderr.splitlines() if line.startswith("imgenh: warning: -j ")]
    assert warned == [
        "imgenh: warning: -j 2: 2 workers take turns on 1 core (no faster than -j 1, more memory); "
        "2 images of 0.012 MP in all finish sooner in one process than in a pool that has to start first "
        "(without -j, imgenh runs them in this process)"
    ]
    report = json.loads((tree / "r.json").read_text())
    assert warned[0].removeprefix("imgenh: warning: ") in report["warnings"]


@pytest.mark.parametrize("jobs", [[], ["-j", "1"]])
def test_no_jobs_warning_when_imgenh_chooses_or_runs_in_process(runner, tree, jobs):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "out", "-v", *jobs], cwd=tree)
    assert res.exit_code == 0, res.output
    assert "with 1 worker" in res.stderr and "-j" not in res.stderr


def test_jobs_warning_for_a_large_batch_only_over_the_cores(tree, monkeypatch):
    jobs = [Job(tree / "photos" / "a.jpg", tree / "out" / "a.jpg", "a.jpg")] * 3
    monkeypatch.setattr(executors, "usable_cores", lambda: 2)
    monkeypatch.setattr(executors, "POOL_MIN_PIXELS", 100)  # 64x96 px images: a large batch

    def warning(jobs_flag, backend="loky", scheduler=None):
        settings = RunOptions(jobs=jobs_flag, backend=backend, scheduler=scheduler)
        return executors.jobs_warning(jobs, executors.choose_workers(jobs, jobs_flag, backend), settings)

    assert warning(None) is None and warning(2) is None  # one worker per core
    assert warning(3) == "-j 3: 3 workers take turns on 2 cores (no faster than -j 2, more memory) " + (
        "(without -j, imgenh uses 2 workers)"
    )
    assert warning(8) == warning(3).replace("-j 3:", "-j 8:")  # 3 jobs: 3 workers at most
    assert warning(3, "threading").startswith("-j 3: 3 workers take turns on 2 cores")
    assert warning(3, "dask").startswith("-j 3: 3 workers take turns on 2 cores")  # a LocalCluster
    assert warning(3, "dask", "tcp://10.0.0.5:8786") is None  # -j is ignored there (a note says so)
    monkeypatch.setattr(executors, "POOL_MIN_PIXELS", 80_000_000)  # a small batch again
    assert warning(2).startswith("-j 2: 3 images of 0.018 MP in all finish sooner in one process")
    assert warning(2, "threading") is None  # threads cost nothing to start


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_cores_are_the_ones_this_process_may_use(tmp_path):
    """Under `taskset -c 0` (or a container's cpuset) one core is all imgenh has, whatever the machine holds."""
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
    code += "from imgenh.executors import usable_cores; print(usable_cores())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
