"""Preprocessing transformers, always fit on a fold's training rows only."""
