"""MLflow runs this file to build the model ("models from code"); its artifacts come through ``load_context``."""

from mlflow.models import set_model

from houseprices.tracking.packaging import PricePyfunc

set_model(PricePyfunc())
