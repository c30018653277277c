"""Optuna hyperparameter search and its per-worker preprocessing cache."""
