"""Analyses of a trained run's stored weights: the lesion study and the loss landscape."""
