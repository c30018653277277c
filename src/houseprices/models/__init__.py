"""Model kinds: validated ``models.<name>`` entries turned into scikit-learn pipelines."""
