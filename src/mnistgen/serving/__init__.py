"""Sampling trained generators: the code a registered model carries with it."""
