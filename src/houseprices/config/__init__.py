"""Typed, validated params.yaml and search.yaml."""
