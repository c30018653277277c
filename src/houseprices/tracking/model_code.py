"""MLflow "models from code" entry point: MLflow runs this file to build the model
object; the fitted pipelines arrive through ``load_context`` as an artifact."""

from mlflow.models import set_model

from houseprices.tracking.packaging import PricePyfunc

set_model(PricePyfunc())
