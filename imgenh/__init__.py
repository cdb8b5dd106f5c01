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
files and folders like ``imgenh run``; ``fit_folders(before, after, ...)`` learns an edit like
``imgenh fit`` (the pieces are in :mod:`imgenh.fit`); ``read_image``/``write_image`` are the safe I/O.
"""

__version__ = "0.1.0"

# The API is imported on first use (PEP 562), so `imgenh --version` and a Ctrl-C during
# start-up need none of numpy, OpenCV or the operators.
_API = {
    "ConfigError": "imgenh.pipeline_file",
    "fit_folders": "imgenh.fit.folders",
    "Pipeline": "imgenh.pipeline",
    "RunOptions": "imgenh.runner",
    "load_pipeline": "imgenh.pipeline_file",
    "parse_pipeline": "imgenh.pipeline_file",
    "pipeline_from_steps": "imgenh.pipeline_file",
    "read_image": "imgenh.io",
    "run_batch": "imgenh.runner",
    "run_op": "imgenh.pipeline",
    "write_image": "imgenh.io",
}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'imgenh' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "Pipeline",
    "RunOptions",
    "__version__",
    "fit_folders",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_from_steps",
    "read_image",
    "run_batch",
    "run_op",
    "write_image",
]
