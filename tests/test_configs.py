"""Every pipeline in configs/ validates, runs on sample_images, and does what its description says."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from imgenh import RunOptions, load_pipeline, run_batch
from imgenh.io import read_image

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
EXPECTED = {"default", "low_light", "color_cast", "scanned_documents", "hdr_tone_map", "dataset_normalize"}


def test_the_documented_configs_exist():
    assert {c.stem for c in CONFIGS} >= EXPECTED


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("samples")
    for p in (ROOT / "sample_images").iterdir():
        if p.suffix.lower() in (".jpg", ".png"):
            shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture(scope="module")
def results(samples, tmp_path_factory) -> dict[str, Path]:
    outs = {}
    for config in CONFIGS:
        out = tmp_path_factory.mktemp(config.stem)
        summary = run_batch(load_pipeline(config), [str(samples)], out, RunOptions(jobs=1))
        assert summary.exit_code == 0, [r.reason for r in summary.results if r.status == "failed"]
        assert summary.count("ok") == len(list(samples.iterdir()))
        outs[config.stem] = out
    return outs


def pixels(path: Path) -> np.ndarray:
    return read_image(path).pixels.astype(np.float64) / (65535 if path.name.endswith("16bit.png") else 255)


def luma(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else img @ np.array([0.072186, 0.715158, 0.212656])


def linear_mean(img: np.ndarray) -> np.ndarray:
    """Mean colour in linear light (sRGB decoded), the quantity a colour cast multiplies."""
    lin = np.where(img <= 0.04045, img / 12.92, ((img + 0.055) / 1.055) ** 2.4)
    return lin.reshape(-1, 3).mean(axis=0)


def cast_angle(img: np.ndarray, reference: np.ndarray) -> float:
    """Angle in degrees between the mean linear colours of two images."""
    a, b = linear_mean(img), linear_mean(reference)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def warmth(img: np.ndarray, reference: np.ndarray) -> float:
    """How much warmer (along the black-body locus, log chromaticity) img's mean linear colour is."""
    from imgenh.ops.color import LOCUS_DIRECTION, log_chroma

    uv = log_chroma(linear_mean(img)) - log_chroma(linear_mean(reference))  # B, G, R
    return float(uv @ LOCUS_DIRECTION)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.stem)
def test_config_outputs_decode_with_kept_layout(config, results, samples):
    out = results[config.stem]
    pipeline = load_pipeline(config)
    for src in samples.iterdir():
        name = src.name if pipeline.output.format == "keep" else src.stem + ".png"
        before, after = read_image(src), read_image(out / name)
        assert after.pixels.ndim == before.pixels.ndim
        assert (after.alpha is None) == (before.alpha is None)
        if config.stem != "dataset_normalize":
            assert after.pixels.shape == before.pixels.shape
            assert after.pixels.dtype == before.pixels.dtype


def test_default_leaves_good_photos_and_keeps_a_dim_warm_ones_key(results, samples):
    for name in ("coffee.jpg", "chelsea.jpg", "astronaut.jpg"):
        before, after = pixels(samples / name), pixels(results["default"] / name)
        # A full tonal range is left as it is (stretch strength auto), give or take the colour steps.
        assert abs(luma(after).std() / luma(before).std() - 1) < 0.03, name
        # A gentle correction: the average colour moves by a few degrees at most.
        assert cast_angle(after, before) < 8, name
    # A dim, warm night shot with bright lamps: its key kept (low_light is for more). Its lamps'
    # red reaches near white, so a linked stretch has no room without clipping them: at most a
    # small lift. Its strong cast is left to color_cast (default's white balance fades out for
    # casts this strong, as its description says): the colour stays within a few degrees, never
    # pushed past neutral.
    warm, neutral = pixels(samples / "rocket_dim_warm.jpg"), pixels(samples / "rocket.jpg")
    after = pixels(results["default"] / "rocket_dim_warm.jpg")
    assert 1.0 <= luma(after).mean() / luma(warm).mean() < 1.3
    assert np.mean(after[..., 2] >= 254 / 255) <= np.mean(warm[..., 2] >= 254 / 255) + 1e-3  # no red clipped
    assert 0.8 * cast_angle(warm, neutral) < cast_angle(after, neutral) <= cast_angle(warm, neutral) + 0.5


def _linear_light(img: np.ndarray) -> np.ndarray:
    return np.where(img <= 0.04045, img / 12.92, ((img + 0.055) / 1.055) ** 2.4)


def _stored(light: np.ndarray) -> np.ndarray:
    light = np.clip(light, 0, 1)
    srgb = np.where(light <= 0.0031308, light * 12.92, 1.055 * light ** (1 / 2.4) - 0.055)
    return np.rint(srgb * 255).astype(np.uint8)


def _report(reports: list[dict], op: str) -> dict:
    """The report of the (only) step running ``op``."""
    (found,) = [r for r in reports if r.get("op") == op]
    return found


def test_default_removes_luma_noise_only_where_there_is_some(samples):
    # Gaussian noise of sigma 10 levels on coffee: default's denoise step runs in full and brings
    # the result closer to the clean photo than the noisy input; the clean photo reads under the
    # range's start and passes the step untouched.
    default = load_pipeline(ROOT / "configs" / "default.yaml")
    clean = read_image(samples / "coffee.jpg").pixels
    _, reports = default.apply(clean)
    assert _report(reports, "denoise")["strength"] == 0.0
    rng = np.random.default_rng(5)
    noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
    out, reports = default.apply(noisy)
    assert _report(reports, "denoise")["strength"] == 1.0
    error = [np.abs(x.astype(float) - clean).mean() for x in (noisy, out)]
    assert error[1] < 0.7 * error[0]


def test_default_pulls_an_over_exposure_back_a_little_and_lifts_a_backlit_lower_half(samples):
    default = load_pipeline(ROOT / "configs" / "default.yaml")
    clean = pixels(samples / "coffee.jpg")
    over = _stored(_linear_light(clean) * 2.5)  # +1.3 stops, highlights clip
    out, reports = default.apply(over)
    assert _report(reports, "exposure")["stops"] == -0.3  # capped: a bright photo loses little
    assert np.abs(out / 255 - clean).mean() < 0.9 * np.abs(over / 255 - clean).mean()
    assert out[over.min(axis=2) == 255].min() >= 254  # what clipped stays white
    # The lower half 2.7 stops darker (as a backlit subject under a bright sky): lifted by half a
    # stop in linear light, no more, since a landscape whose foreground is that much darker than
    # its sky reads the same on the zone meter; the upper half is left as it was.
    rows = np.where(np.arange(clean.shape[0]) < clean.shape[0] // 2, 1.0, 0.15)
    backlit = _stored(_linear_light(clean) * rows[:, None, None])
    out, reports = default.apply(backlit)
    assert _report(reports, "shadows_highlights")["lift"] == 0.5
    lower, upper = slice(int(0.6 * clean.shape[0]), None), slice(0, int(0.4 * clean.shape[0]))

    def gain(part: slice) -> float:
        return _linear_light(out[part] / 255).mean() / _linear_light(backlit[part] / 255).mean()

    assert 2**0.4 < gain(lower) < 2**0.55
    assert abs(gain(upper) - 1) < 0.02


def test_low_light_brightens_the_dim_shot(results, samples):
    before = pixels(samples / "rocket_dim_warm.jpg")
    after = pixels(results["low_light"] / "rocket_dim_warm.jpg")
    assert luma(after).mean() > 2 * luma(before).mean()


def test_color_cast_takes_a_strong_warm_cast_down_to_its_warm_limit(results, samples):
    # rocket_dim_warm.jpg is rocket.jpg with a known warm cast (about a 3500 K light's), so the
    # truth is known. color_cast removes warmth only up to a 4500 K light's (warm_limit 0.5):
    # the mean colour's warmth against the neutral rocket goes from ~0.9 to ~0.4, not to 0.
    warm, neutral = pixels(samples / "rocket_dim_warm.jpg"), pixels(samples / "rocket.jpg")
    after = pixels(results["color_cast"] / "rocket_dim_warm.jpg")
    assert warmth(warm, neutral) > 0.8
    assert 0.25 < warmth(after, neutral) < 0.5
    assert cast_angle(after, neutral) < 0.6 * cast_angle(warm, neutral)


def test_scanned_documents_whitens_paper_as_png(results, samples):
    out = results["scanned_documents"]
    assert sorted(p.suffix for p in out.iterdir() if p.is_file()) == [".png"] * len(list(samples.iterdir()))
    before, after = pixels(samples / "camera.png"), pixels(out / "camera.png")
    assert np.percentile(after, 95) >= np.percentile(before, 95)


def test_scanned_documents_flattens_uneven_paper_and_keeps_ink_dark():
    """scikit-image's `page` is a photographed page whose paper goes from light grey to dark grey."""
    skimage_data = pytest.importorskip("skimage.data")
    page = skimage_data.page()
    out, _ = load_pipeline(ROOT / "configs" / "scanned_documents.yaml").apply(page)

    def paper_levels(img: np.ndarray) -> np.ndarray:  # the paper in each of 4 x 4 tiles: its 90th percentile
        h, w = img.shape
        return np.array(
            [
                np.percentile(img[i * h // 4 : (i + 1) * h // 4, j * w // 4 : (j + 1) * w // 4], 90)
                for i in range(4)
                for j in range(4)
            ]
        )

    assert np.ptp(paper_levels(page)) > 80  # before: the paper's level varies by 100 levels
    assert np.ptp(paper_levels(out)) <= 10 and paper_levels(out).min() >= 240  # after: white everywhere
    assert np.percentile(out, 5) <= np.percentile(page, 5)  # ink no lighter than it was


def test_hdr_tone_map_opens_shadows(results, samples):
    before = luma(pixels(samples / "rocket_dim_warm.jpg"))
    after = luma(pixels(results["hdr_tone_map"] / "rocket_dim_warm.jpg"))
    dark = before < np.percentile(before, 25)
    assert after[dark].mean() > 3 * before[dark].mean()


def test_hdr_tone_map_lifts_a_backlit_lower_half_back_first(samples):
    # The lower half 2.7 stops darker: the zone-metered step lifts it 2.5 stops in linear light, so
    # the lower part comes back close to the clean photo; an evenly lit photo is not metered as backlit.
    hdr = load_pipeline(ROOT / "configs" / "hdr_tone_map.yaml")
    clean = pixels(samples / "coffee.jpg")
    rows = np.where(np.arange(clean.shape[0]) < clean.shape[0] // 2, 1.0, 0.15)
    backlit = _stored(_linear_light(clean) * rows[:, None, None])
    out, reports = hdr.apply(backlit)
    metered, generic = [r for r in reports if r.get("op") == "shadows_highlights"]
    assert metered["lift"] == 2.5
    lower = slice(int(0.6 * clean.shape[0]), None)
    assert (
        np.abs(out[lower] / 255 - clean[lower]).mean()
        < 0.3 * np.abs(backlit[lower] / 255 - clean[lower]).mean()
    )
    _, reports = hdr.apply(_stored(_linear_light(clean)))
    assert [r.get("lift", 0) for r in reports if r.get("op") == "shadows_highlights"][0] == 0


def test_dataset_normalize_sizes_and_strips(results, samples):
    for src in samples.iterdir():
        img = read_image(results["dataset_normalize"] / (src.stem + ".png"))
        h, w = read_image(src).pixels.shape[:2]
        assert max(img.pixels.shape[:2]) == min(512, max(h, w))
        assert img.exif is None and img.icc is None
