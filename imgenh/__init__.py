"""imgenh: batch image enhancement from versioned YAML pipelines."""

__version__ = "0.1.0"
