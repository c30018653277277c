"""MLflow tracking, one module per job:

- :mod:`.store`: which repository and store a stage uses, and whether the store answers
- :mod:`.lineage`: git, params, data and package lineage; the pipeline execution's id and name
- :mod:`.tracker`: the run tree (:class:`Tracker`, :class:`NullTracker` when tracking is off)
- :mod:`.runlog`: what a stage logs on one run (:class:`RunLog`, :class:`NullRun`)
- :mod:`.packaging`: the priced-house model as an MLflow model, logged from code
- :mod:`.registry`: registered versions, their tags and the ``champion``/``submitted`` aliases
"""

from houseprices.tracking.lineage import file_sha256, lineage_tags, pipeline_run_id, pipeline_run_name
from houseprices.tracking.registry import CHAMPION, SUBMITTED, mark_submitted
from houseprices.tracking.runlog import NullRun, RunLog, flatten, log_params
from houseprices.tracking.store import check_reachable, in_workspace, repo_root, tracking_uri
from houseprices.tracking.tracker import KIND_TAG, PIPELINE_RUN_TAG, NullTracker, Tracker, connect, pipeline_params

__all__ = [
    "CHAMPION",
    "KIND_TAG",
    "PIPELINE_RUN_TAG",
    "SUBMITTED",
    "NullRun",
    "NullTracker",
    "RunLog",
    "Tracker",
    "check_reachable",
    "connect",
    "file_sha256",
    "flatten",
    "in_workspace",
    "lineage_tags",
    "log_params",
    "mark_submitted",
    "pipeline_params",
    "pipeline_run_id",
    "pipeline_run_name",
    "repo_root",
    "tracking_uri",
]
