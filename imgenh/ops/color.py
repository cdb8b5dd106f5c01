"""color operators."""
