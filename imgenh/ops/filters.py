"""filters operators."""
