"""Tag keys this project sets on MLflow runs (a leaf: every tracking module may read them)."""

KIND_TAG = "houseprices.kind"  # pipeline, stage, model, fold, search, trial
PIPELINE_RUN_TAG = "houseprices.pipeline_run_id"
OWNER_HOST = "houseprices.owner.host"
OWNER_PID = "houseprices.owner.pid"
OWNER_STARTED = "houseprices.owner.started_ms"
THREADS_TAG = "houseprices.threads"
PARENT_TAG = "mlflow.parentRunId"

# Experiment tags MLflow's UI reads (3.17: mlflow/utils/mlflow_tags.py): without a kind it opens the
# experiment on the GenAI traces overview; with it, on its training runs sorted by the primary metric.
PRIMARY_METRIC = "cv_log_rmse"
EXPERIMENT_TAGS = {
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.experiment.primaryMetric.name": PRIMARY_METRIC,
    "mlflow.experiment.primaryMetric.greaterIsBetter": "false",
}
