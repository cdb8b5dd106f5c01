"""imgenh: batch image enhancement from versioned YAML pipelines.

Python API
----------
>>> import numpy as np
>>> from imgenh import pipeline_from_steps
>>> p = pipeline_from_steps([{"op": "gamma", "value": 2.0}])
>>> out, reports = p.apply(np.full((2, 2), 64, np.uint8))
>>> int(out[0, 0])
128

``load_pipeline(path)`` reads a YAML file; ``run_batch(pipeline, inputs, out)`` runs it over
files and folders like ``imgenh run``; ``read_image``/``write_image`` are the safe I/O.
"""

__version__ = "0.1.0"

from imgenh.io import read_image, write_image  # noqa: E402
from imgenh.pipeline import Pipeline, run_op  # noqa: E402
from imgenh.pipeline_file import ConfigError, load_pipeline, parse_pipeline, pipeline_from_steps  # noqa: E402
from imgenh.runner import RunOptions, run_batch  # noqa: E402

__all__ = [
    "ConfigError",
    "Pipeline",
    "RunOptions",
    "__version__",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_from_steps",
    "read_image",
    "run_batch",
    "run_op",
    "write_image",
]
