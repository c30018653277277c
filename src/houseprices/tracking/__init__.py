"""MLflow tracking, one module per job:

- :mod:`.store`: which repository and store a stage uses, and whether the store answers
- :mod:`.lineage`: git, params, data and package lineage; the pipeline execution's id and name
- :mod:`.tracker`: the run tree (:class:`Tracker`, :class:`NullTracker` when tracking is off)
- :mod:`.runlog`: what a stage logs on one run (:class:`RunLog`, :class:`NullRun`)
- :mod:`.packaging`: the priced-house model as an MLflow model, logged from code
- :mod:`.registry`: registered versions and their tags
- :mod:`.champion`: the ``champion`` alias a team shares: the best CV holds it
- :mod:`.submitted`: the ``submitted`` alias after a Kaggle upload
- :mod:`.tags`: the tag keys of this project's runs
- :mod:`.lifecycle`: runs KILLED on signals, stale RUNNING runs closed
- :mod:`.failures`: store and disk failures as one line; bounded HTTP; moved repos
"""
