"""Tag keys this project sets on MLflow runs (a leaf: every tracking module may read them)."""

KIND_TAG = "houseprices.kind"  # pipeline, stage, model, fold, search, trial
PIPELINE_RUN_TAG = "houseprices.pipeline_run_id"
OWNER_HOST = "houseprices.owner.host"
OWNER_PID = "houseprices.owner.pid"
OWNER_STARTED = "houseprices.owner.started_ms"
THREADS_TAG = "houseprices.threads"
PARENT_TAG = "mlflow.parentRunId"

# Experiment tags read by MLflow's UI (3.17: mlflow/utils/mlflow_tags.py and the UI's experiment
# kinds): without a kind the UI guesses one and opens this experiment on the GenAI traces overview;
# with it, the experiment opens on its training runs, sorted by the primary metric.
PRIMARY_METRIC = "cv_log_rmse"
EXPERIMENT_TAGS = {
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.experiment.primaryMetric.name": PRIMARY_METRIC,
    "mlflow.experiment.primaryMetric.greaterIsBetter": "false",
}
