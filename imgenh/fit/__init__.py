"""Learn an edit from before/after pairs (``imgenh fit``).

Typical use::

    from imgenh.fit import match_pairs, load_pairs, fit_look, render_pipeline
    found = match_pairs("edits/before", "edits/after")
    pairs, refused = load_pairs(found.pairs)
    result = fit_look(pairs, holdout=None, seed=0)
    text = render_pipeline(result, refused=[f"{p.key}: {why}" for p, why in refused])
"""

from imgenh.fit.look import LADDER, Complexity, LookModel
from imgenh.fit.pairs import Pair, PairImages, PairMatch, PairRefused, load_pair, load_pairs, match_pairs
from imgenh.fit.render import comment_block, look_to_cube, render_pipeline
from imgenh.fit.select import FitResult, PairError, fit_look

__all__ = [
    "LADDER",
    "Complexity",
    "FitResult",
    "LookModel",
    "Pair",
    "PairError",
    "PairImages",
    "PairMatch",
    "PairRefused",
    "comment_block",
    "fit_look",
    "load_pair",
    "load_pairs",
    "look_to_cube",
    "match_pairs",
    "render_pipeline",
]
