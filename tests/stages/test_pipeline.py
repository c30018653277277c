"""The estimators on small slices: fit/predict, folds, determinism."""

import numpy as np
import pandas as pd
import pytest

from conftest import RAW
from houseprices.config.params import parse_params
from houseprices.data.prepared import load_prepared
from houseprices.data.schema import ID
from houseprices.errors import DataError
from houseprices.evaluation.cross_validation import cross_validate, fit_model
from houseprices.evaluation.ensemble import PriceModel
from houseprices.evaluation.feature_cache import preprocessed
from houseprices.evaluation.folds import log_rmse, make_folds
from houseprices.evaluation.outliers import outlier_mask
from houseprices.models.registry import build_estimator

TINY_MLP = {"kind": "mlp", "hidden": [16], "epochs": 3, "batch_size": 64}


def params_with(models, **extra):
    return parse_params({"models": models, "cv": {"folds": 2, "repeats": 1}, **extra})


def test_log_rmse_is_the_competition_metric():
    y = np.log([100.0, 200.0])
    assert log_rmse(y, y) == 0
    assert log_rmse(np.log([100.0]), np.log([100.0 * np.e])) == pytest.approx(1.0)


def test_folds_are_seeded_and_cover_every_row_once_per_repeat():
    a = make_folds(100, 5, 2, seed=1)
    b = make_folds(100, 5, 2, seed=1)
    assert len(a) == 10
    assert all(np.array_equal(x.valid, y.valid) for x, y in zip(a, b, strict=True))
    for r in range(2):
        valid = np.concatenate([f.valid for f in a if f.repeat == r])
        assert sorted(valid) == list(range(100))
    assert not np.array_equal(a[0].valid, make_folds(100, 5, 2, seed=2)[0].valid)


@pytest.mark.parametrize(
    "model",
    [
        TINY_MLP,
        {"kind": "ridge"},
        {"kind": "lasso", "alpha": 0.001},
        {"kind": "elastic_net"},
        {"kind": "kernel_ridge"},
        {"kind": "hist_gradient_boosting", "max_iter": 20},
    ],
)
def test_every_model_kind_prices_raw_test_rows(small_xy, model):
    X, y = small_xy
    params = params_with({"m": model})
    est = build_estimator(params.model("m"), params.features, params.seed).fit(X, y)
    raw_test = pd.read_csv(RAW / "test.csv").head(50)  # straight from the CSV: ints, NaN
    prices = PriceModel({"m": est}, {"m": 1.0}).predict(raw_test)
    assert prices.shape == (50,)
    assert np.isfinite(prices).all() and (prices > 1000).all()


def test_cross_validation_gives_oof_for_every_row(small_xy):
    X, y = small_xy
    result = cross_validate("m", params_with({"m": {"kind": "ridge"}}), X, y, X.head(7))
    assert result.oof.shape == (1, len(X))
    assert np.isfinite(result.oof).all()
    assert len(result.fold_scores) == 2
    assert result.test_fold_predictions.shape == (2, 7)
    assert result.mean == pytest.approx(np.mean(result.fold_scores))


def test_mlp_is_deterministic_for_a_seed(small_xy):
    X, y = small_xy
    params = params_with({"m": TINY_MLP})
    preds = [build_estimator(params.model("m"), params.features, 7).fit(X, y).predict(X.head(20)) for _ in range(2)]
    np.testing.assert_array_equal(preds[0], preds[1])
    other = build_estimator(params.model("m"), params.features, 8).fit(X, y).predict(X.head(20))
    assert not np.array_equal(preds[0], other)


def test_mlp_curves_are_recorded_per_fold(small_xy):
    X, y = small_xy
    result = cross_validate("m", params_with({"m": {**TINY_MLP, "valid_fraction": 0.2}}), X, y)
    assert sorted(result.curves["fold"].unique()) == ["r1f1", "r1f2"]
    assert len(result.curves) == 2 * 3
    assert result.curves[["train_loss", "valid_loss"]].notna().all().all()


def test_mlp_curves_include_the_folds_own_validation_loss(small_xy):
    """holdout_loss is the training criterion on the fold's validation rows: for MSE it is
    the fold's squared log-RMSE in units of the target's training std."""
    X, y = small_xy
    # No weight averaging: the last epoch's weights are then the fold's model.
    params = params_with({"m": {**TINY_MLP, "loss": "mse", "swa_fraction": 0.0}})
    result = cross_validate("m", params, X, y)
    assert result.curves["holdout_loss"].notna().all()
    assert result.curves["valid_loss"].isna().all()  # no internal split asked for
    fold = result.folds[0]
    keep = outlier_mask(X.iloc[fold.train], y.iloc[fold.train], params.features.outliers)
    X_train, y_train = X.iloc[fold.train][keep], y.iloc[fold.train][keep]
    estimator = build_estimator(params.model("m"), params.features, params.seed)
    features = preprocessed(estimator[:-1], X_train, y_train, X.iloc[fold.valid])
    net = fit_model("m", estimator[-1], features.train, y_train, "f", (features.valid, y.iloc[fold.valid]))
    last = net.history[-1, "holdout_loss"]
    assert last == pytest.approx((result.fold_scores[0] / net.target_scale_) ** 2, rel=1e-4)
    assert net.callbacks__holdout__X is None  # validation rows are not kept in the model


def test_misaligned_prepared_rows_are_a_user_error(tmp_path):
    """A DataError: the CLI prints its one line and exits 2, no traceback."""
    pd.DataFrame({ID: [1, 2], "x": [0.0, 1.0]}).to_parquet(tmp_path / "X_train.parquet")
    pd.DataFrame({ID: [2, 1], "log_price": [12.0, 11.0]}).to_parquet(tmp_path / "y_train.parquet")
    pd.DataFrame({ID: [3], "x": [0.5]}).to_parquet(tmp_path / "X_test.parquet")
    with pytest.raises(DataError, match=r"X_train and y_train rows are not aligned by Id; run `houseprices prepare`"):
        load_prepared(tmp_path)
