"""Executors keep large freed buffers for the next image instead of mapping fresh pages."""

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
from imgenh.executors import keep_freed_memory
if sys.argv[1] == "kept":
    keep_freed_memory()
frame = 40 * 1024 * 1024  # a 12 MP colour frame is 36 MB
for _ in range(2):  # the first image's buffers, then the second's
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buf = np.ones(frame, np.uint8)
    del buf
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_frame_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_second_frame_reuses_the_first_frames_memory():
    # By default glibc maps every block above 32 MB afresh: its pages fault in again (>= 20 even
    # with 2 MB huge pages). Kept, the second frame lands in the memory the first one freed.
    assert _second_frame_faults("default") >= 20
    assert _second_frame_faults("kept") < 5
