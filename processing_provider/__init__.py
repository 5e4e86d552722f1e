"""The `superres` Processing provider and its algorithms."""
