"""Learn an edit from before/after pairs (``imgenh fit``).

In one call, as ``imgenh fit`` does it (also ``imgenh.fit_folders``)::

    fitted = fit_folders("edits/before", "edits/after", pipeline=None, adaptive=False)
    Path("look.yaml").write_text(fitted.pipeline_text())  # fitted.report(): errors per pair

Step by step::

    from imgenh.fit import match_pairs, load_pairs, fit_look, render_pipeline
    found = match_pairs("edits/before", "edits/after")
    pairs, refused = load_pairs(found.pairs)
    result = fit_look(pairs, holdout=None, seed=0)
    text = render_pipeline(result, refused=[f"{p.key}: {why}" for p, why in refused])

    # or search the {fit: ...} parameters of a pipeline file
    result = fit_search(load_space("my.yaml"), pairs, holdout=None, seed=0)

    # or predict parameters per image (--adaptive); result.render() is the tuned file's text
    result = fit_adaptive(pairs, holdout=None, seed=0)    # space=load_space("my.yaml") for a pipeline
"""

from imgenh.fit.adaptive import AdaptiveFit, fit_adaptive
from imgenh.fit.folders import FolderFit, fit_folders
from imgenh.fit.look import LADDER, Complexity, LookModel
from imgenh.fit.pairs import Pair, PairImages, PairMatch, PairRefused, load_pair, load_pairs, match_pairs
from imgenh.fit.render import comment_block, look_to_cube, render_pipeline
from imgenh.fit.search import SearchResult, fit_search
from imgenh.fit.select import FitResult, PairError, fit_look
from imgenh.fit.space import FitParam, FitSpace, load_space, parse_space

__all__ = [
    "LADDER",
    "AdaptiveFit",
    "Complexity",
    "FitParam",
    "FitResult",
    "FitSpace",
    "FolderFit",
    "LookModel",
    "Pair",
    "PairError",
    "PairImages",
    "PairMatch",
    "PairRefused",
    "SearchResult",
    "comment_block",
    "fit_adaptive",
    "fit_folders",
    "fit_look",
    "fit_search",
    "load_pair",
    "load_pairs",
    "load_space",
    "look_to_cube",
    "match_pairs",
    "parse_space",
    "render_pipeline",
]
