"""MLflow, as the pipeline shows itself there: store, run tree, lineage, packaged model, registry
and aliases, runs ended on signals and stale ones closed, store failures as one line."""
