"""Thin entry points, one per ``dvc.yaml`` stage: read inputs, call the library, write outputs."""
