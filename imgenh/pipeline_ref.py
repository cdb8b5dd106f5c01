"""Which pipeline a word on the command line names: a file, or a built-in shipped with imgenh.

The built-ins are the YAML files in ``imgenh/configs/`` (the repository's ``configs/`` is a
link to that folder), installed with the package, so ``imgenh run default photos -o out``
works wherever imgenh is installed. A name is the file's stem (``low_light``; ``low-light``
works too).

Rules, in order:

1. A word that names an existing file is that file, even if it is also a built-in name.
2. Otherwise a built-in name is that built-in.
3. Otherwise it is an error: a word that looks like a path (a folder part or a ``.yaml`` /
   ``.yml`` ending) cannot be read; any other word is an unknown name, answered with the
   built-in names and the nearest one.

With ``run -s``, the pipeline is optional and the first word is taken as the pipeline only
when it ends in ``.yaml`` / ``.yml`` or is a built-in name with no file or folder of that
name (``./default`` is always a path); otherwise it is the first input.
"""

from __future__ import annotations

from pathlib import Path

from imgenh.errors import ConfigError
from imgenh.ops.registry import did_you_mean

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SUFFIXES = (".yaml", ".yml")


def builtin_names() -> list[str]:
    """The built-in pipelines' names, sorted: ``['color_cast', 'dataset_normalize', 'default', ...]``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def builtin_path(name: str) -> Path | None:
    """The file of the built-in called ``name`` (``-`` and ``_`` alike), or None."""
    stem = name.replace("-", "_")
    return CONFIG_DIR / f"{stem}.yaml" if stem in builtin_names() else None


def _looks_like_path(word: str) -> bool:
    return "/" in word or "\\" in word or word.lower().endswith(SUFFIXES)


def builtin_list() -> str:
    """``color_cast, dataset_normalize, ...``: the names, for messages."""
    return ", ".join(builtin_names())


def _unknown(name: str, what: str) -> ConfigError:
    hint = did_you_mean(name, builtin_names())
    return ConfigError([f"{name}: {what}{hint} (built-ins: {builtin_list()}; see `imgenh configs`)"])


def builtin_text(name: str) -> str:
    """The YAML text of the built-in called ``name`` (``imgenh configs show NAME``).

    Raises
    ------
    ConfigError
        For an unknown name, with the built-in names and the nearest one.
    """
    path = builtin_path(name)
    if path is None:
        raise _unknown(name, "not a built-in pipeline")
    return path.read_text(encoding="utf-8")


def resolve(ref: str | Path) -> Path:
    """The file a pipeline reference names (rules 1-3 of the module docstring).

    Raises
    ------
    ConfigError
        For a folder, or a name that is neither a file nor a built-in (with the built-in names
        and the nearest one). A missing path is returned as it is, for the reader to report.
    """
    path = Path(ref)
    if path.is_dir():
        raise ConfigError(
            [f"{ref}: is a folder, not a pipeline (a YAML file or a built-in name; or -s steps)"]
        )
    if path.is_file() or isinstance(ref, Path) or _looks_like_path(str(ref)):
        return path
    found = builtin_path(str(ref))
    if found is None:
        raise _unknown(str(ref), "no such pipeline file, and not a built-in pipeline")
    return found


def missing_file_hint(path: Path) -> str:
    """For a pipeline file that does not exist: the built-in of the same name, if there is one."""
    name = path.stem.replace("-", "_")
    return f"; a built-in has that name: use `{name}` instead of the path" if builtin_path(name) else ""


def split_run_args(words: tuple[str, ...] | list[str], with_steps: bool) -> tuple[str | None, list[str]]:
    """``run``'s positional words as (pipeline or None, inputs).

    Without ``-s`` the first word is always the pipeline; with ``-s`` only when it ends in
    ``.yaml``/``.yml``, or is a built-in name and no file or folder has that name.

    Raises
    ------
    ConfigError
        No word at all and no ``-s`` step: the pipeline is missing.

    Examples
    --------
    >>> split_run_args(["default", "photos"], with_steps=True)
    ('default', ['photos'])
    >>> split_run_args(["photos", "more"], with_steps=True)
    (None, ['photos', 'more'])
    """
    words = list(words)
    if not with_steps:
        if not words:
            raise ConfigError(
                [f"missing PIPELINE: a pipeline file, a built-in ({builtin_list()}), or -s steps"]
            )
        return words[0], words[1:]
    if words:
        first = words[0]
        if first.lower().endswith(SUFFIXES) or (builtin_path(first) and not Path(first).exists()):
            return first, words[1:]
    return None, words
