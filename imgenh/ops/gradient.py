"""gradient operators."""
