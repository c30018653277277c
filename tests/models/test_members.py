"""Boosted, kernel and robust members (kind lightgbm, xgboost, catboost, svr,
gradient_boosting), their per-kind preprocessing and the optional features: each fits
raw rows, refuses bad params by key, and never learns from a fold's validation rows.

Tiny iteration counts keep the file to seconds."""

from __future__ import annotations

import importlib.metadata
import io
import pickle

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from conftest import cross_validate_recording_fits
from fitted_state import learned_state
from houseprices.config.models import packages
from houseprices.config.params import parse_params
from houseprices.errors import ConfigError
from houseprices.evaluation.outliers import outlier_mask
from houseprices.features.extra import (
    INTERACTIONS,
    RELATIVE_AREAS,
    RELATIVE_QUALITY,
    TE_SUFFIX,
    Interactions,
    NeighborhoodRelative,
    QualityScore,
    TargetStatistics,
)
from houseprices.models.registry import build_estimator, build_preprocessing
from houseprices.models.regressors import CatBoostMember, cores
from houseprices.tracking.packaging import LOADING_PACKAGES
from houseprices.util.files import pickled

TINY = {
    "lightgbm": {"kind": "lightgbm", "n_estimators": 20, "n_jobs": 1, "objective": "regression"},
    "xgboost": {"kind": "xgboost", "n_estimators": 20, "n_jobs": 1},
    "catboost": {"kind": "catboost", "iterations": 20, "thread_count": 1},
    "catboost_codes": {"kind": "catboost", "iterations": 20, "thread_count": 1, "native_categorical": False},
    "svr": {"kind": "svr"},
    "gradient_boosting": {"kind": "gradient_boosting", "n_estimators": 20},
    "lightgbm_huber": {"kind": "lightgbm", "n_estimators": 20, "n_jobs": 1, "objective": "huber"},
    "mlp_embeddings": {"kind": "mlp", "hidden": [8], "epochs": 3, "embedding_dim": 3},
    "mlp_swa": {"kind": "mlp", "hidden": [8], "epochs": 4, "swa_fraction": 0.5, "swa_lr": 0.0005, "batch_norm": True},
}
FEATURES = {"interactions": {"enabled": True}, "target_encoding": {"enabled": True, "inner_folds": 3}}
PLAIN = {"interactions": {"enabled": False}, "target_encoding": {"enabled": False}}


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture
def xy(small_xy):
    X, y = small_xy
    return X.copy(), y.copy()


def params_for(name: str, features: dict | None = None, folds: int = 3):
    return parse_params(
        {
            "models": {name: TINY[name]},
            "ensemble": {"members": [name]},
            "cv": {"folds": folds, "repeats": 1},
            "features": features or PLAIN,
        }
    )


@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("extra", [False, True], ids=["plain", "features"])
def test_each_kind_fits_and_predicts_raw_rows(xy, test_frame, name, extra):
    X, y = xy
    params = params_for(name, FEATURES if extra else None)
    est = build_estimator(params.model(name), params.features, params.seed).fit(X, y)
    pred = est.predict(test_frame.head(50))  # raw test rows: unseen categories, other holes
    assert pred.shape == (50,) and np.isfinite(pred).all()
    assert abs(float(np.mean(pred)) - float(y.mean())) < 0.5  # it learned the price level
    names = [str(n).split("__")[-1] for n in est[0].get_feature_names_out()]
    assert (f"Neighborhood{TE_SUFFIX}" in names) == extra
    assert ("QualGrLivArea" in names) == extra


class ImportsRecorded(pickle.Unpickler):
    def find_class(self, module, name):
        self.modules.add(module.partition(".")[0])
        return super().find_class(module, name)


@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "catboost", "svr", "mlp_swa"])
def test_a_fitted_kind_declares_every_distribution_its_pickle_imports(xy, name):
    """A logged ensemble's requirements.txt lists the kinds' ``packages``: a missing one fails to load."""
    params = params_for(name)
    fitted = build_estimator(params.model(name), params.features, params.seed).fit(*xy)
    loader = ImportsRecorded(io.BytesIO(pickled(fitted)))
    loader.modules = set()
    loader.load()
    owners = importlib.metadata.packages_distributions()
    needed = {dist for module in loader.modules for dist in owners.get(module, ()) if dist != "houseprices"}
    declared = {*LOADING_PACKAGES, *packages([params.model(name)])}
    assert needed - declared <= {"ruamel.yaml.clib"}  # ruamel.yaml's own dependency
    assert set(packages([params.model(name)])) <= needed  # and nothing it does not import


def test_trees_see_codes_and_catboost_sees_text(xy):
    X, y = xy
    lgb = build_preprocessing(params_for("lightgbm").model("lightgbm"), params_for("lightgbm").features, 0)
    Z = lgb.fit_transform(X, y)
    assert all(pd.api.types.is_numeric_dtype(Z[c]) for c in Z.columns)
    assert Z.shape[1] < 120  # one column per feature, no one-hot
    assert Z["ExterQual"].max() <= 5 and Z["LotArea"].equals(X["LotArea"].astype(float))  # ordered codes, raw numbers
    cat = params_for("catboost")
    Z = build_preprocessing(cat.model("catboost"), cat.features, 0).fit_transform(X, y)
    assert not pd.api.types.is_numeric_dtype(Z["Neighborhood"])
    model = CatBoostMember(iterations=5, thread_count=1).fit(Z, np.log(X["LotArea"]))
    assert "Neighborhood" in model.cat_features_ and "LotArea" not in model.cat_features_


@pytest.mark.parametrize(
    "name,bad,key",
    [
        ("lightgbm", {"num_leaves": 1}, "models.m.num_leaves"),
        ("xgboost", {"subsample": 1.5}, "models.m.subsample"),
        ("catboost", {"depth": 0}, "models.m.depth"),
        ("svr", {"C": -1}, "models.m.C"),
        ("gradient_boosting", {"loss": "hubber"}, "models.m.loss"),
        ("lightgbm", {"n_jobs": -1}, "models.m.n_jobs"),
        ("xgboost", {"max_dept": 3}, "models.m.max_dept"),
        ("lightgbm", {"objective": "hubber"}, "models.m.objective"),
        ("lightgbm", {"huber_delta": 0.0}, "models.m.huber_delta"),
        ("mlp_embeddings", {"embedding_dim": -1}, "models.m.embedding_dim"),
        ("mlp_embeddings", {"embedding_weight_decay": -1.0}, "models.m.embedding_weight_decay"),
        ("mlp_swa", {"swa_fraction": 1.0}, "models.m.swa_fraction"),
        ("mlp_swa", {"swa_lr": -0.1}, "models.m.swa_lr"),
    ],
)
def test_bad_params_name_the_key(name, bad, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_params({"models": {"m": {**TINY[name], **bad}}})


def test_unknown_kind_lists_the_new_kinds():
    with pytest.raises(ConfigError, match="catboost") as err:
        parse_params({"models": {"m": {"kind": "lgbm"}}})
    assert "models.m" in str(err.value)


def test_bad_target_encoding_column_names_the_key():
    with pytest.raises(ConfigError, match=r"features\.target_encoding\.columns"):
        parse_params({"features": {"target_encoding": {"columns": ["Neighbourhood"]}}})


def test_zero_threads_means_the_process_thread_cap(monkeypatch):
    from houseprices.util.threads import available_cores, limit_threads

    assert cores(3) == 3
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cores(0) == available_cores()
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        monkeypatch.setenv(var, "1")  # monkeypatch restores what limit_threads writes
    limit_threads(1)
    assert cores(0) == 1


POISON = 7  # a training row given an unseen neighbourhood and a huge lot


def poisoned_folds(X, y, monkeypatch, name: str, features: dict):
    """Cross-validate with row POISON poisoned: per fold, (POISON is a training row, the
    fold's fitted preprocessing, the same preprocessing fit on the fold's training rows)."""
    X.loc[POISON, ["Neighborhood", "LotArea"]] = ["Atlantis", 1e9]
    params = params_for(name, features)
    result, fitted = cross_validate_recording_fits(monkeypatch, name, params, X, y)
    assert np.isfinite(result.oof).all()
    out = []
    for fold, (rows, pre) in zip(result.folds, fitted, strict=True):
        train_X, train_y = X.iloc[fold.train], y.iloc[fold.train]
        keep = outlier_mask(train_X, train_y, params.features.outliers)
        assert set(rows) == set(fold.train[keep])
        reference = build_preprocessing(params.model(name), params.features, params.seed)
        out.append((POISON in fold.train, pre, reference.fit(train_X[keep], train_y[keep])))
    assert sorted(in_train for in_train, _, _ in out) == [False, True, True]
    return out


@pytest.mark.parametrize(
    "name", ["lightgbm", "catboost", "gradient_boosting", "svr", "lightgbm_huber", "mlp_embeddings"]
)
def test_each_cv_fold_is_preprocessed_without_its_validation_rows(xy, monkeypatch, name):
    for in_train, pre, reference in poisoned_folds(*xy, monkeypatch, name, FEATURES):
        te = pre.named_steps["target_statistics"].encoder_
        assert ("Atlantis" in te.categories_[0]) == in_train
        np.testing.assert_equal(learned_state(pre), learned_state(reference))


MORE_FEATURES = {**FEATURES, "neighborhood_relative": {"enabled": True}, "quality_score": {"enabled": True}}


@pytest.mark.parametrize("name", ["svr", "lightgbm"])
def test_neighborhood_medians_come_from_each_folds_training_rows(xy, monkeypatch, name):
    for in_train, pre, reference in poisoned_folds(*xy, monkeypatch, name, MORE_FEATURES):
        relative = pre.named_steps["neighborhood_relative"]
        assert ("Atlantis" in relative.medians_.index) == in_train
        assert relative.overall_["LotAreaVsNeighborhood"] < 1e5  # a median: one huge lot does not move it
        same = reference.named_steps["neighborhood_relative"]
        pd.testing.assert_frame_equal(relative.medians_, same.medians_)
        pd.testing.assert_series_equal(relative.overall_, same.overall_)

        def others(est):  # the frames above aside (numpy cannot compare them)
            return {k: v for k, v in learned_state(est).items() if not k.startswith("neighborhood_relative/")}

        np.testing.assert_equal(others(pre), others(reference))


def test_target_statistics_are_fold_safe(xy):
    """Poisoning a validation row's price moves no training feature; a training row's
    own statistic never includes its own price (cross-fitted), while the rows scored
    later get the statistics of all training rows."""
    X, y = xy
    train, valid = np.arange(200), np.arange(200, 300)
    enc = TargetStatistics(("Neighborhood",), inner_folds=5, random_state=0)
    Z_train = enc.fit_transform(X.iloc[train], y.iloc[train])
    poisoned = y.copy()
    poisoned.iloc[valid] = 100.0
    again = TargetStatistics(("Neighborhood",), inner_folds=5, random_state=0)
    pd.testing.assert_frame_equal(again.fit_transform(X.iloc[train], poisoned.iloc[train]), Z_train)

    # Row 0's own price does not reach its own encoded value...
    own = y.copy()
    own.iloc[0] += 5.0
    moved = TargetStatistics(("Neighborhood",), inner_folds=5, random_state=0).fit_transform(
        X.iloc[train], own.iloc[train]
    )
    col = f"Neighborhood{TE_SUFFIX}"
    assert moved[col].iloc[0] == pytest.approx(Z_train[col].iloc[0])
    # ...but it does reach other training rows of its neighbourhood, and the scored rows.
    assert not np.allclose(moved[col].to_numpy(), Z_train[col].to_numpy())
    assert Z_train[col].nunique() > X.iloc[train]["Neighborhood"].nunique()  # cross-fitted, not one value per category
    assert enc.transform(X.iloc[valid])[col].nunique() <= X.iloc[valid]["Neighborhood"].nunique()


def test_neighborhood_relative_divides_by_the_fit_rows_median():
    frame = pd.DataFrame(
        {
            "Neighborhood": ["A", "A", "A", "B"],
            "GrLivArea": [1000.0, 2000.0, 3000.0, 500.0],
            "TotalBsmtSF": [0.0] * 4,
            "1stFlrSF": [1000.0] * 4,
            "2ndFlrSF": [0.0] * 4,
            "LotArea": [8000.0] * 4,
            "OverallQual": [5, 6, 7, 4],
        }
    )
    step = NeighborhoodRelative().fit(frame)
    scored = frame.iloc[[0, 3]].copy()
    scored.loc[3, "Neighborhood"] = "Atlantis"  # unseen: the median over all fit rows
    Z = step.transform(scored)
    assert list(Z.columns[-4:]) == [*RELATIVE_AREAS, RELATIVE_QUALITY]
    np.testing.assert_allclose(Z["GrLivAreaVsNeighborhood"], [1000 / 2000, 500 / 1500])
    np.testing.assert_allclose(Z[RELATIVE_QUALITY], [5 - 6, 4 - 5.5])
    np.testing.assert_allclose(Z["TotalSFVsNeighborhood"], [1.0, 1.0])


def test_quality_score_sums_the_ratings_and_counts_a_missing_one_as_typical():
    ratings = {
        "ExterQual": ["Ex", "Po"],
        "KitchenQual": ["Gd", "Po"],
        "BsmtQual": ["TA", "None"],
        "HeatingQC": ["Fa", "Po"],
        "FireplaceQu": ["None", np.nan],
        "GarageQual": ["Ex", "Po"],
    }
    frame = pd.DataFrame({**ratings, "GrLivArea": [1000.0, 2000.0]})
    Z = QualityScore().fit(frame).transform(frame)
    np.testing.assert_allclose(Z["QualityScore"], [5 + 4 + 3 + 2 + 0 + 5, 1 + 1 + 0 + 1 + 3 + 1])
    np.testing.assert_allclose(Z["QualityScoreGrLivArea"], [19 * 1000.0, 7 * 2000.0])


def test_interactions_multiply_quality_by_area(xy):
    X, _ = xy
    Z = Interactions().fit(X).transform(X)
    assert list(Z.columns[-len(INTERACTIONS) :]) == list(INTERACTIONS)
    np.testing.assert_allclose(Z["QualGrLivArea"], X["OverallQual"] * X["GrLivArea"])


# ------------------------------------------------------------------ MLP options
def test_gaussian_rank_replaces_the_numeric_scaler(xy):
    X, y = xy
    params = parse_params({"models": {"mlp": {"kind": "mlp", "input_transform": "gaussian_rank"}}})
    pre = build_preprocessing(params.model("mlp"), params.features, 0).fit(X, y)
    scale = pre.named_steps["columns"].named_transformers_["num"]["scale"]
    assert type(scale).__name__ == "QuantileTransformer" and scale.output_distribution == "normal"
    plain = parse_params({"models": {"mlp": {"kind": "mlp"}}})
    assert (
        type(
            build_preprocessing(plain.model("mlp"), plain.features, 0)
            .fit(X, y)
            .named_steps["columns"]
            .named_transformers_["num"]["scale"]
        ).__name__
        == "StandardScaler"
    )


def test_seed_average_fits_distinct_nets_and_averages_them(xy):
    X, y = xy
    params = parse_params({"models": {"mlp": {"kind": "mlp", "hidden": [8], "epochs": 2, "n_seeds": 3}}})
    est = build_estimator(params.model("mlp"), params.features, 0).fit(X, y)
    bag = est[-1]
    assert len(bag.estimators_) == 3 and len({e.random_state for e in bag.estimators_}) == 3
    Z = est[0].transform(X.head(20))
    each = np.stack([e.predict(Z) for e in bag.estimators_])
    assert not np.allclose(each[0], each[1])
    np.testing.assert_allclose(bag.predict(Z), each.mean(axis=0))


def test_weight_averaged_net_is_deterministic_for_a_seed(xy, test_frame):
    X, y = xy
    params = params_for("mlp_swa")
    rows = test_frame.head(50)

    def predict(seed):
        return build_estimator(params.model("mlp_swa"), params.features, seed).fit(X, y).predict(rows)

    first = predict(0)
    np.testing.assert_array_equal(predict(0), first)
    assert not np.allclose(predict(1), first)


def test_huber_objective_reaches_lightgbm_and_resists_a_mispriced_house(xy):
    X, y = xy
    fits = {}
    for objective in ("regression", "huber"):
        params = parse_params(
            {"models": {"m": {**TINY["lightgbm"], "objective": objective, "n_estimators": 200}}, "features": PLAIN}
        )
        est = build_estimator(params.model("m"), params.features, 0)
        bad = y.copy()
        bad.iloc[:20] += 3.0  # twenty houses priced 20 times too high
        fits[objective] = est.fit(X, bad)
    assert fits["huber"][-1].get_params()["objective"] == "huber"
    assert fits["huber"][-1].get_params()["alpha"] == 0.1
    error = {k: float(np.mean(np.abs(e.predict(X.iloc[20:]) - y.iloc[20:]))) for k, e in fits.items()}
    assert error["huber"] < error["regression"]


def test_embeddings_replace_one_hot_with_one_code_per_categorical_column(xy, test_frame):
    X, y = xy
    params = params_for("mlp_embeddings")
    est = build_estimator(params.model("mlp_embeddings"), params.features, 0).fit(X, y)
    Z = est[0].transform(test_frame.head(50))
    codes = [c for c in Z.columns if c.startswith("cat__")]
    assert "cat__Neighborhood" in codes and not any(c.startswith("cat__Neighborhood_") for c in Z.columns)
    module = est[-1].module_
    assert len(module.limits) == len(codes) and module.embeddings.embedding_dim == 3
    # Codes 1..k for the training rows' categories; 0 for one never seen in training.
    train_codes = est[0].transform(X)["cat__Neighborhood"]
    assert train_codes.min() >= 1
    rows = int(module.limits[codes.index("cat__Neighborhood")])
    # min_frequency (10) groups the rare neighbourhoods under one shared code.
    assert rows == train_codes.nunique() + 1 == int(train_codes.max()) + 1
    assert module.embeddings.num_embeddings == int(module.limits.sum())
    assert (module.offsets[1:] == module.offsets[:-1] + module.limits[:-1]).all()  # each column its own rows
    assert train_codes.nunique() < X["Neighborhood"].nunique()
    unseen = test_frame.head(5).copy()
    unseen["Neighborhood"] = "Atlantis"
    assert (est[0].transform(unseen)["cat__Neighborhood"] == 0).all()
    assert np.isfinite(est.predict(unseen)).all()


def test_embedding_tables_get_their_own_weight_decay(xy):
    X, y = xy
    params = parse_params(
        {
            "models": {"m": {**TINY["mlp_embeddings"], "weight_decay": 2.0, "embedding_weight_decay": 0.5}},
            "features": PLAIN,
        }
    )
    net = build_estimator(params.model("m"), params.features, 0).fit(X, y)[-1]
    decays = sorted((g["weight_decay"], len(g["params"])) for g in net.optimizer_.param_groups)
    assert decays == [(0.5, 1), (2.0, 4)]


def test_embeddings_refuse_pca_naming_the_keys():
    params = parse_params({"models": {"m": TINY["mlp_embeddings"]}, "features": {**PLAIN, "pca": {"enabled": True}}})
    with pytest.raises(ConfigError, match=r"embedding_dim.*features\.pca\.enabled"):
        build_preprocessing(params.model("m"), params.features, 0)
