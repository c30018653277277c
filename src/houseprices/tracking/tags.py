"""Tag keys this project sets on MLflow runs (a leaf: every tracking module may read them)."""

KIND_TAG = "houseprices.kind"  # pipeline, stage, model, fold, search, trial
PIPELINE_RUN_TAG = "houseprices.pipeline_run_id"
OWNER_HOST = "houseprices.owner.host"
OWNER_PID = "houseprices.owner.pid"
OWNER_STARTED = "houseprices.owner.started_ms"
THREADS_TAG = "houseprices.threads"
PARENT_TAG = "mlflow.parentRunId"
