"""Dialogs. They build algorithm parameters and compute nothing themselves."""
