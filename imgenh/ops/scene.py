"""How bright the scene was: the camera's exposure (EXIF) and the image it rendered.

A dim image can be a camera's error (an under-exposed daylight shot) or the scene's own light
(a blue hour, a night street); the levels alone cannot tell them apart, the exposure can. At
settings of ``ev100`` a scene metered to mid-grey comes out at mid-grey, so an image whose mean
linear luma is ``m`` saw a scene of ``ev100 + log2(m / 0.18)``: about 15 in sunlight, 12 under an
overcast sky, 5-7 in a lit room, 3 or less at dusk and at night. A photo of a dark scene is
rendered darker than mid-grey (a night should look like night): :meth:`SceneLight.key` says how
dark, and a brightening step stops there.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from imgenh.io.exif import CameraExposure
from imgenh.ops.color import srgb_to_linear
from imgenh.pixels import LUMA_BGR, channel_counts, luma, max_value, nearest_sample

MID_GREY = 0.18  # the linear level a meter puts an average scene at
KEY_PER_EV = 0.5  # the rendered mean falls half a stop per EV of less light


def mean_linear_luma(img: np.ndarray) -> float:
    """Mean Rec. 709 luma of an sRGB-encoded image in linear light.

    Luma is linear in the channels, so its mean is the weighted sum of each channel's mean
    linear value; integer images get those from level counts through a decoding table,
    without a float copy.
    """
    if img.dtype == np.float32:
        return float(np.mean(luma(srgb_to_linear(img))))
    levels = int(max_value(img.dtype)) + 1
    decoded = srgb_to_linear(np.arange(levels) / (levels - 1))
    pixels = img.shape[0] * img.shape[1]
    means = [float(np.dot(counts, decoded)) / pixels for counts in channel_counts(np.ascontiguousarray(img))]
    return means[0] if len(means) == 1 else float(np.dot(LUMA_BGR, means))


class SceneLight:
    """The scene's light for one image, worked out only when an operator asks for it.

    Parameters
    ----------
    camera : CameraExposure
        The settings the photo was taken with.
    pixels : ndarray
        The image as read (BGR or grey; uint8, uint16 or float32 in [0, 1]), not modified.
    """

    def __init__(self, camera: CameraExposure, pixels: np.ndarray):
        self.camera = camera
        self._pixels = pixels

    @cached_property
    def mean(self) -> float:
        """The image's mean linear luma (sRGB decoded, Rec. 709), from every 4th pixel of every 4th row."""
        sample = nearest_sample(self._pixels)
        self._pixels = None  # the image is not needed again
        return max(mean_linear_luma(sample), 1e-4)

    @property
    def ev(self) -> float:
        """The scene's exposure value at ISO 100 (EV100), from the settings and the image's mean."""
        return self.camera.ev100 + math.log2(self.mean / MID_GREY)

    def key(self, lit_ev: float) -> float:
        """The highest mean linear luma a photo of this scene is brightened to.

        Mid-grey for a scene at ``lit_ev`` (EV100), half a stop lower per EV of less light
        (:data:`KEY_PER_EV`) and higher per EV of more: a dusk stays dim, while a daylight
        scene's limit lies above any mean a stretch reaches.
        """
        return MID_GREY * 2.0 ** (KEY_PER_EV * (self.ev - lit_ev))
