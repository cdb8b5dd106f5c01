"""geometry operators."""
