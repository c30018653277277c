"""Preprocessing: every statistic comes from training rows only, every option in
``features:`` changes what the model sees, and the transformers keep sklearn's contract."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_estimator,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)
from threadpoolctl import threadpool_limits

from conftest import cross_validate_recording_fits
from fitted_state import learned_state
from houseprices.config.params import parse_params
from houseprices.data.schema import ORDINAL_SCALES
from houseprices.data.validation import split_target
from houseprices.evaluation import cross_validation as training
from houseprices.evaluation.outliers import outlier_mask, typical_rows
from houseprices.features.numeric import SkewTransformer, TrainingRangeClip
from houseprices.features.pipelines import build_preprocessor, feature_names
from houseprices.features.rows import (
    DomainFeatures,
    GroupMedianImputer,
    HouseFrame,
    MissingIndicators,
    NoneFiller,
)
from houseprices.models.registry import build_preprocessing


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Small matrices: BLAS threads only spin on a shared machine."""
    with threadpool_limits(1):
        yield


# Everything that learns a statistic switched on at once.
EVERYTHING = {
    "impute": {"numeric": "mean", "missing_indicators": True},
    "skew": {"method": "yeo-johnson"},
    "encoding": {"ordinal_quality": True, "min_frequency": 3},
    "pca": {"enabled": True, "n_components": 0.95, "whiten": True},
}
# No transform after imputation: output values can be checked against the raw rows.
PLAIN = {"scaling": "none", "skew": {"method": "none"}}


def features(*overrides: dict):
    """FeaturesConfig from params.yaml-shaped overrides, merged left to right."""
    merged: dict = {}
    for override in overrides:
        for key, value in override.items():
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_params({"features": merged}).features


def frame_out(cfg, X_fit, X=None) -> pd.DataFrame:
    """Fit on X_fit, transform X (default X_fit), as a DataFrame named by the pipeline."""
    pre = build_preprocessor(cfg).set_output(transform="pandas").fit(X_fit)
    return pre.transform(X_fit if X is None else X)


@pytest.fixture
def xy(small_xy):
    X, y = small_xy
    return X.copy(), y.copy()


def wild(X: pd.DataFrame) -> pd.DataFrame:
    """The same rows, changed beyond recognition: huge numbers, unseen categories, holes."""
    out = X.copy()
    num = [c for c in out.columns if pd.api.types.is_numeric_dtype(out[c]) and c != "Id"]
    out[num] = out[num] * 1000.0 + 1e7
    out.loc[out.index[::3], num[:10]] = np.nan
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = "never-seen-" + col
    return out


# --------------------------------------------------------------------- leakage
# Learned statistics that rows outside the training rows would move.
WATCHED = (
    "lot_frontage/group_medians_",
    "num/impute/statistics_",
    "num/skew/skewed_mask_",
    "power_/lambdas_",
    "num/clip/data_max_",
    "num/scale/mean_",
    "num/scale/scale_",
    "num/scale/center_",
    "cat/onehot/categories_",
    "missing_indicators/columns_",
    "pca/components_",
    "pca/mean_",
)


@pytest.mark.parametrize(
    "cfg",
    [{}, EVERYTHING, {"scaling": "robust", "skew": {"method": "box-cox"}, "impute": {"categorical": "most_frequent"}}],
    ids=["default", "everything", "robust-boxcox"],
)
def test_statistics_come_from_training_rows_only(xy, cfg):
    X, _ = xy
    train, test = X.iloc[:200], X.iloc[200:]
    pre = build_preprocessor(features(cfg)).fit(train)
    state = learned_state(pre)
    Z_train = pre.transform(train)

    Z_test = pre.transform(wild(test))
    assert np.isfinite(Z_test).all()
    np.testing.assert_equal(learned_state(pre), state)  # transform learned nothing
    np.testing.assert_array_equal(pre.transform(train), Z_train)

    # The snapshot is not vacuous: fitting on the wild rows too moves these statistics.
    leaked = learned_state(build_preprocessor(features(cfg)).fit(pd.concat([train, wild(test)])))
    watched = [k for k in state if k.endswith(WATCHED)]
    if features(cfg).impute.categorical == "most_frequent":
        watched.append("columns/cat/impute/statistics_")
    assert {
        "lot_frontage/group_medians_",
        "columns/num/impute/statistics_",
        "columns/num/skew/skewed_mask_",
        "columns/cat/onehot/categories_",
    } <= set(watched)
    assert any(k.startswith("columns/num/scale/") for k in watched)
    for key in watched:
        with pytest.raises(AssertionError):
            np.testing.assert_equal(leaked[key], state[key], err_msg=key)


@pytest.mark.parametrize(
    "model",
    [
        {"kind": "ridge"},
        # the MLP path also scores each epoch on the fold's validation rows
        {"kind": "mlp", "hidden": [8], "epochs": 2},
    ],
)
def test_each_cv_fold_is_preprocessed_without_its_validation_rows(xy, monkeypatch, model):
    X, y = xy
    poison = 7  # one row with an extreme value, a new neighbourhood and its own lot frontage
    X.loc[poison, ["Neighborhood", "LotArea", "LotFrontage"]] = ["Atlantis", 1e9, 999.0]
    params = parse_params(
        {
            "models": {"m": model},
            "ensemble": {"members": ["m"]},
            "cv": {"folds": 3, "repeats": 1},
            "features": {"scaling": "minmax", "skew": {"method": "none"}, "impute": {"missing_indicators": True}},
        }
    )
    result, fitted = cross_validate_recording_fits(monkeypatch, "m", params, X, y)
    assert len(fitted) == 3 and np.isfinite(result.oof).all()
    seen = []
    for fold, (rows, pre) in zip(result.folds, fitted, strict=True):
        train_X, train_y = X.iloc[fold.train], y.iloc[fold.train]
        keep = outlier_mask(train_X, train_y, params.features.outliers)
        assert set(rows) == set(fold.train[keep])  # the fold's fit got its training rows only
        cat = pre.named_steps["columns"].named_transformers_["cat"]
        neighborhoods = cat["onehot"].categories_[list(cat["impute"].feature_names_in_).index("Neighborhood")]
        num = pre.named_steps["columns"].named_transformers_["num"]
        lot_area_max = num["scale"].data_max_[list(num["impute"].feature_names_in_).index("LotArea")]
        in_train = poison in fold.train
        seen.append(in_train)
        assert ("Atlantis" in neighborhoods) == in_train
        assert ("Atlantis" in pre.named_steps["lot_frontage"].group_medians_) == in_train
        assert (lot_area_max == 1e9) == in_train
        # Exactly the statistics of a preprocessor fit on the fold's (outlier-free) training rows.
        reference = build_preprocessing(params.model("m"), params.features, params.seed).fit(
            train_X[keep], train_y[keep]
        )
        np.testing.assert_equal(learned_state(pre), learned_state(reference))
    assert sorted(seen) == [False, True, True]  # the poisoned row was validation once


def test_the_scores_without_outliers_always_leave_out_the_two_documented_sales(train_frame):
    X, log_price = split_target(train_frame)
    assert X.loc[~typical_rows(X, log_price), "Id"].tolist() == [524, 1299]
    # Training may drop more (or nothing); the scored definition does not follow it.
    wider = parse_params({"features": {"outliers": {"max_price": 1e7}}}).features.outliers
    assert (~outlier_mask(X, log_price, wider)).sum() == 4


@pytest.mark.parametrize("enabled", [True, False])
def test_outliers_leave_training_folds_only(xy, monkeypatch, enabled):
    X, y = xy
    outliers = [3, 11, 40]  # huge and cheap: the documented partial sales
    X.loc[outliers, "GrLivArea"] = 5000.0
    y.loc[outliers] = np.log(150_000)
    outliers = np.flatnonzero(~outlier_mask(X, y, parse_params({}).features.outliers))
    assert len(outliers) >= 3
    params = parse_params(
        {
            "models": {"m": {"kind": "ridge"}},
            "ensemble": {"members": ["m"]},
            "cv": {"folds": 3, "repeats": 1},
            "features": {"outliers": {"enabled": enabled}},
        }
    )
    result, fitted = cross_validate_recording_fits(monkeypatch, "m", params, X, y)
    for fold, (rows, _) in zip(result.folds, fitted, strict=True):
        expected = set(fold.train) - (set(outliers) if enabled else set())
        assert set(rows) == expected
    # Validation rows are never dropped: every outlier has an out-of-fold prediction and score.
    assert np.isfinite(result.oof[0, outliers]).all()
    assert sum(len(f.valid) for f in result.folds) == len(X)
    # The final refit drops them the same way.
    fit_rows = []
    real_build = training.build_estimator

    def spy_build(*args, **kwargs):
        est = real_build(*args, **kwargs)
        real_fit = est.fit

        def fit(X_fit, y_fit=None, **kw):
            fit_rows.append(set(X_fit.index))
            return real_fit(X_fit, y_fit, **kw)

        est.fit = fit
        return est

    monkeypatch.setattr(training, "build_estimator", spy_build)
    training.fit_estimator("m", params.model("m"), params, X, y, "refit")
    assert fit_rows == [set(X.index) - (set(outliers) if enabled else set())]


def test_outlier_mask_thresholds():
    X = pd.DataFrame({"GrLivArea": [5000.0, 5000.0, 3000.0, np.nan]})
    log_price = np.log([100_000.0, 500_000.0, 100_000.0, 100_000.0])
    cfg = parse_params({}).features.outliers
    assert outlier_mask(X, log_price, cfg).tolist() == [False, True, True, True]
    stricter = cfg.model_copy(update={"min_living_area": 2500, "max_price": 600_000})
    assert outlier_mask(X, log_price, stricter).tolist() == [False, False, False, True]
    off = cfg.model_copy(update={"enabled": False})
    assert outlier_mask(X, log_price, off).all()


# ------------------------------------------------------------ robustness
@pytest.mark.parametrize(
    "cfg",
    [
        {},
        EVERYTHING,
        {
            "impute": {
                "numeric": "most_frequent",
                "categorical": "most_frequent",
                "na_means_none": False,
                "lot_frontage_by_neighborhood": False,
            },
            "scaling": "minmax",
            "skew": {"method": "box-cox"},
        },
        {
            "impute": {"numeric": "constant"},
            "encoding": {"min_frequency": 10},
            "pca": {"enabled": True, "n_components": 7},
        },
    ],
    ids=["default", "everything", "most-frequent", "constant-pca7"],
)
def test_unknown_categories_and_empty_columns_give_finite_features(xy, cfg):
    X, _ = xy
    train, test = X.iloc[:150].copy(), X.iloc[150:].copy()
    # Columns with no value at all in the training rows.
    train[["LotFrontage", "MasVnrArea", "GarageYrBlt"]] = np.nan
    train[["Fence", "Electrical", "KitchenQual"]] = np.nan
    # Test rows with categories, codes and values the training rows never had.
    test["Neighborhood"] = "Atlantis"
    test["KitchenQual"] = "Superb"
    test["Fence"] = "Electric"
    test["MSSubClass"] = 150.0
    test.loc[test.index[:5], :] = np.nan  # rows with nothing known at all
    test["Extra"] = "only in test"
    pre = build_preprocessor(features(cfg)).fit(train)
    Z_train, Z_test = pre.transform(train), pre.transform(test)
    assert np.isfinite(Z_train).all() and np.isfinite(Z_test).all()
    assert Z_test.shape == (len(test), Z_train.shape[1]) == (len(test), len(feature_names(pre)))


def test_raw_csv_rows_and_prepared_rows_give_the_same_features(xy):
    """HouseFrame types raw read_csv output (ints, NaN) like validated rows."""
    from conftest import RAW

    raw = pd.read_csv(RAW / "train.csv").head(80).drop(columns=["SalePrice"])
    X, _ = xy
    pre = build_preprocessor(features({})).fit(X)
    from houseprices.data.validation import read_csv

    prepared = read_csv(RAW / "train.csv", is_train=True).head(80).drop(columns=["SalePrice"])
    np.testing.assert_allclose(pre.transform(raw), pre.transform(prepared))


# ------------------------------------------------------- every option matters
@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_numeric_impute_strategy(xy, strategy):
    X, _ = xy
    X.loc[:9, "GarageYrBlt"] = np.nan
    known = X["GarageYrBlt"].dropna()
    expected = {"mean": known.mean(), "median": known.median(), "most_frequent": known.mode().iloc[0], "constant": 0.0}
    assert len(set(expected.values())) == 4
    out = frame_out(features(PLAIN, {"impute": {"numeric": strategy}}), X)
    missing = X["GarageYrBlt"].isna()
    assert np.allclose(out.loc[missing, "num__GarageYrBlt"], expected[strategy])
    np.testing.assert_array_equal(out.loc[~missing, "num__GarageYrBlt"], known)


@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_categorical_impute_strategy(xy, strategy):
    X, _ = xy
    X.loc[:4, "MSZoning"] = np.nan
    mode = X["MSZoning"].mode().iloc[0]
    # Five rows: below the default min_frequency, so every category keeps its own column here.
    out = frame_out(features({"impute": {"categorical": strategy}, "encoding": {"min_frequency": 1}}), X)
    filled = "cat__MSZoning_missing" if strategy == "constant" else f"cat__MSZoning_{mode}"
    assert (out.loc[:4, filled] == 1.0).all()
    assert ("cat__MSZoning_missing" in out.columns) == (strategy == "constant")


@pytest.mark.parametrize("on", [True, False])
def test_na_means_none(xy, on):
    X, _ = xy
    X.loc[:4, "MasVnrArea"] = np.nan
    out = frame_out(features(PLAIN, {"impute": {"na_means_none": on, "numeric": "mean"}}), X)
    no_pool = X["PoolQC"].isna().to_numpy()
    column = "cat__PoolQC_None" if on else "cat__PoolQC_missing"
    np.testing.assert_array_equal(out[column], no_pool.astype(float))
    assert ("cat__PoolQC_None" in out.columns) == on
    expected = 0.0 if on else X["MasVnrArea"].mean()
    assert np.allclose(out.loc[:4, "num__MasVnrArea"], expected)


@pytest.mark.parametrize("on", [True, False])
def test_missing_indicators(xy, on):
    X, _ = xy
    out = frame_out(features({"impute": {"missing_indicators": on}}), X.iloc[:200], X)
    assert ("flag__LotFrontage_missing" in out.columns) == on
    assert ("flag__GarageYrBlt_missing" in out.columns) == (on and X["GarageYrBlt"].iloc[:200].isna().any())
    assert "flag__LotArea_missing" not in out.columns  # complete in training: no indicator
    if on:  # 0/1, not scaled (like one-hot), learned before LotFrontage is imputed
        np.testing.assert_array_equal(out["flag__LotFrontage_missing"], X["LotFrontage"].isna().astype(float))


@pytest.mark.parametrize("on", [True, False])
def test_lot_frontage_by_neighborhood(xy, on):
    X, _ = xy
    out = frame_out(features(PLAIN, {"impute": {"lot_frontage_by_neighborhood": on}}), X)
    missing = X["LotFrontage"].isna()
    group = X.groupby("Neighborhood")["LotFrontage"].median()
    by_group = X.loc[missing, "Neighborhood"].map(group).fillna(X["LotFrontage"].median())
    expected = by_group if on else pd.Series(X["LotFrontage"].median(), index=by_group.index)
    assert (by_group != X["LotFrontage"].median()).any()
    np.testing.assert_allclose(out.loc[missing, "num__LotFrontage"], expected)


@pytest.mark.parametrize("scaling", ["standard", "minmax", "robust", "none"])
def test_scaling(xy, scaling):
    X, _ = xy
    col = frame_out(features({"scaling": scaling, "skew": {"method": "none"}}), X)["num__GrLivArea"]
    raw = X["GrLivArea"]
    if scaling == "standard":
        assert col.mean() == pytest.approx(0, abs=1e-9) and col.std(ddof=0) == pytest.approx(1)
    elif scaling == "minmax":
        assert col.min() == pytest.approx(0) and col.max() == pytest.approx(1)
    elif scaling == "robust":
        assert col.median() == pytest.approx(0, abs=1e-9)
        assert col.quantile(0.75) - col.quantile(0.25) == pytest.approx(1)
    else:
        np.testing.assert_array_equal(col, raw)


@pytest.mark.parametrize("method", ["none", "log1p", "yeo-johnson", "box-cox"])
def test_skew_method(xy, method):
    X, _ = xy
    pre = build_preprocessor(features({"scaling": "none", "skew": {"method": method}}))
    out = pre.set_output(transform="pandas").fit(X).transform(X)
    skew = pre.named_steps["columns"].named_transformers_["num"].named_steps["skew"]
    area, quality = X["LotArea"].to_numpy(), X["OverallQual"].to_numpy()
    chosen = skew.skewed_columns()
    assert ("LotArea" in chosen) == (method != "none") and "OverallQual" not in chosen
    if method == "none":
        expected = area
    elif method == "log1p":
        expected = np.log1p(area)
    else:
        lam = skew.power_.lambdas_[chosen.index("LotArea")]
        assert abs(lam - 1) > 0.1
        expected = stats.yeojohnson(area, lam) if method == "yeo-johnson" else stats.boxcox(area + 1, lam)
    np.testing.assert_allclose(out["num__LotArea"], expected, rtol=1e-9)
    np.testing.assert_array_equal(out["num__OverallQual"], quality)


def test_skew_threshold_is_used(xy):
    X, _ = xy
    low = build_preprocessor(features({"skew": {"threshold": 0.5}})).fit(X)
    high = build_preprocessor(features({"skew": {"threshold": 50}})).fit(X)
    chosen = [
        p.named_steps["columns"].named_transformers_["num"].named_steps["skew"].skewed_columns() for p in (low, high)
    ]
    assert len(chosen[0]) > 10 and chosen[1] == []


def test_skew_columns_are_learned_in_fit_and_log1p_skips_left_skew():
    rng = np.random.default_rng(0)
    right = rng.lognormal(0, 1, 500)
    X = np.column_stack([right, -right + 100, rng.normal(size=500), rng.integers(0, 2, 500) * 50.0])
    log1p = SkewTransformer(method="log1p", threshold=0.75).fit(X)
    yeo = SkewTransformer(method="yeo-johnson", threshold=0.75).fit(X)
    assert log1p.skewed_mask_.tolist() == [True, False, False, False]  # never a left tail
    assert yeo.skewed_mask_.tolist() == [True, True, False, False]  # two-valued: never
    # Transforming other rows changes neither choice nor lambdas.
    state = learned_state(yeo)
    yeo.transform(X * 1000)
    np.testing.assert_equal(learned_state(yeo), state)
    # Below the training domain log1p/box-cox clip at 0 instead of producing NaN.
    for method in ("log1p", "box-cox"):
        out = SkewTransformer(method=method).fit(X).transform(np.array([[-5.0, 0, 0, 0]]))
        assert np.isfinite(out).all()


def test_inputs_beyond_the_training_range_are_priced_like_its_edge():
    train = np.array([[1.0, np.nan, 10.0], [3.0, np.nan, np.nan], [2.0, np.nan, 30.0]])
    clip = TrainingRangeClip().fit(train)
    out = clip.transform(np.array([[0.0, 5.0, 99.0], [5.0, -5.0, np.nan], [2.5, np.nan, 20.0]]))
    # Each column to its own training range; no training value: as it is; missing stays missing.
    np.testing.assert_array_equal(out, [[1.0, 5.0, 30.0], [3.0, -5.0, np.nan], [2.5, np.nan, 20.0]])


@pytest.mark.parametrize("on", [True, False])
def test_clipping_is_a_features_param(xy, on):
    X, _ = xy
    train, huge = X.iloc[:200], X.iloc[200:201].copy()
    huge["GrLivArea"] = 50_000.0
    pre = build_preprocessor(features(PLAIN, {"clip_to_training_range": on})).fit(train)
    col = list(pre.get_feature_names_out()).index("num__GrLivArea")
    edge = pre.transform(train)[:, col].max()
    assert (pre.transform(huge)[0, col] == edge) == on


@pytest.mark.parametrize("on", [True, False])
def test_ordinal_quality(xy, on):
    X, _ = xy
    out = frame_out(features(PLAIN, {"encoding": {"ordinal_quality": on}}), X)
    assert ("ord__ExterQual" in out.columns) == on
    assert ("cat__ExterQual_Gd" in out.columns) == (not on)
    if on:
        codes = X["ExterQual"].map({v: i for i, v in enumerate(ORDINAL_SCALES["ExterQual"])})
        np.testing.assert_array_equal(out["ord__ExterQual"], codes)


@pytest.mark.parametrize("min_frequency", [1, 10])
def test_min_frequency_groups_rare_categories(xy, min_frequency):
    X, _ = xy
    out = frame_out(features({"encoding": {"min_frequency": min_frequency}}), X)
    counts = X["Neighborhood"].value_counts()
    rare = counts[counts < 10].index
    assert len(rare) > 1
    grouped = "cat__Neighborhood_infrequent_sklearn"
    assert (grouped in out.columns) == (min_frequency == 10)
    if min_frequency == 10:
        np.testing.assert_array_equal(out[grouped], X["Neighborhood"].isin(rare).astype(float))
        assert not any(f"cat__Neighborhood_{n}" in out.columns for n in rare)
    else:
        assert all(f"cat__Neighborhood_{n}" in out.columns for n in counts.index)


@pytest.mark.parametrize("as_categorical", [["MSSubClass"], [], ["MSSubClass", "MoSold"]])
def test_as_categorical(xy, as_categorical):
    X, _ = xy
    out = frame_out(features({"encoding": {"as_categorical": as_categorical}}), X)
    for col, code in (("MSSubClass", "60"), ("MoSold", "6")):
        assert (f"cat__{col}_{code}" in out.columns) == (col in as_categorical)
        assert (f"num__{col}" in out.columns) == (col not in as_categorical)


DOMAIN = {
    "total_sf": ["TotalSF"],
    "total_bathrooms": ["TotalBathrooms"],
    "ages": ["HouseAge", "YearsSinceRemodel"],
    "porch_area": ["TotalPorchSF"],
    "has_flags": ["HasPool", "HasGarage", "HasBasement", "HasFireplace", "Has2ndFloor"],
}


@pytest.fixture(scope="module")
def plain_out(small_xy):
    return frame_out(features(PLAIN), small_xy[0])


@pytest.mark.parametrize("flag", list(DOMAIN))
def test_each_domain_feature_switches(xy, plain_out, flag):
    X, _ = xy
    on = plain_out
    off = frame_out(features(PLAIN, {"domain": {flag: False}}), X)
    added = {f"flag__{c}" if c.startswith("Has") else f"num__{c}" for c in DOMAIN[flag]}
    assert set(on.columns) - set(off.columns) == added
    if flag == "total_sf":
        np.testing.assert_allclose(on["num__TotalSF"], X[["TotalBsmtSF", "1stFlrSF", "2ndFlrSF"]].sum(axis=1))
    if flag == "ages":
        np.testing.assert_allclose(on["num__HouseAge"], X["YrSold"] - X["YearBuilt"])
    if flag == "has_flags":
        np.testing.assert_array_equal(on["flag__HasPool"], (X["PoolArea"] > 0).astype(float))


def test_domain_all_off_drops_the_step(xy):
    X, _ = xy
    pre = build_preprocessor(features({"domain": {k: False for k in DOMAIN}})).fit(X)
    assert "domain" not in pre.named_steps
    assert not any(n.endswith(tuple(sum(DOMAIN.values(), []))) for n in feature_names(pre))


@pytest.mark.parametrize(
    "pca",
    [
        {"enabled": False},
        {"enabled": True, "n_components": 7},
        {"enabled": True, "n_components": 0.9},
        {"enabled": True, "n_components": 0.9, "whiten": True},
    ],
)
def test_pca(xy, pca):
    X, _ = xy
    pre = build_preprocessor(features({"pca": pca})).fit(X)
    Z = pre.transform(X)
    if not pca["enabled"]:
        assert "pca" not in pre.named_steps and Z.shape[1] > 100
        return
    fitted = pre.named_steps["pca"]
    share = np.cumsum(fitted.explained_variance_ratio_)
    if isinstance(pca["n_components"], int):
        assert Z.shape[1] == 7
    else:
        assert share[-1] >= 0.9 > share[-2]  # the fewest components reaching the share
    variances = Z.var(axis=0, ddof=1)
    if pca.get("whiten"):
        np.testing.assert_allclose(variances, 1.0, rtol=1e-6)
    else:
        assert variances[0] > 5 * variances[-1]


def test_pca_float_count_is_refused():
    from houseprices.errors import ConfigError

    with pytest.raises(ConfigError, match="features.pca.n_components"):
        features({"pca": {"n_components": 2.5}})
    assert features({"pca": {"n_components": 3.0}}).pca.n_components == 3


# ------------------------------------------------------------- sklearn contract
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")  # array-API check: needs SCIPY_ARRAY_API
@pytest.mark.parametrize("method", ["log1p", "yeo-johnson", "box-cox"])
def test_skew_transformer_passes_check_estimator(method):
    check_estimator(SkewTransformer(method=method))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")  # array-API check: needs SCIPY_ARRAY_API
def test_training_range_clip_passes_check_estimator():
    check_estimator(TrainingRangeClip())


@pytest.mark.parametrize(
    "est",
    [
        HouseFrame(),
        NoneFiller(),
        MissingIndicators(),
        GroupMedianImputer(),
        DomainFeatures(total_sf=False),
        SkewTransformer(method="box-cox", threshold=1.0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_frame_transformers_keep_the_estimator_contract(est, xy):
    name = type(est).__name__
    check_no_attributes_set_in_init(name, est)
    check_parameters_default_constructible(name, est)
    check_get_params_invariance(name, est)
    check_set_params(name, clone(est))
    X, _ = xy
    X = HouseFrame().fit_transform(X) if not isinstance(est, HouseFrame) else X
    if isinstance(est, SkewTransformer):
        X = X.select_dtypes("number")
    params = set(est.get_params())
    fitted = clone(est).fit(X)
    new = set(vars(fitted)) - params
    assert new and all(k.endswith("_") for k in new), new
    out = fitted.transform(X)
    names = list(fitted.get_feature_names_out())
    assert names == (list(X.columns) if isinstance(est, SkewTransformer) else list(out.columns))
    assert out.shape[1] == len(names)
    assert fitted.set_output(transform="pandas") is fitted
    if params:  # keyword-only, like scikit-learn's estimators
        with pytest.raises(TypeError):
            type(est)(*est.get_params().values())


@pytest.mark.parametrize(
    "cfg",
    [{}, EVERYTHING, {"impute": {"missing_indicators": True}, "encoding": {"ordinal_quality": True}}],
    ids=["default", "everything", "indicators-ordinal"],
)
def test_feature_names_run_through_the_whole_preprocessor(xy, cfg):
    X, _ = xy
    pre = build_preprocessor(features(cfg)).fit(X)
    names = feature_names(pre)
    Z = pre.transform(X)
    assert len(names) == Z.shape[1] == len(set(names))
    as_frame = clone(pre).set_output(transform="pandas").fit(X).transform(X)
    assert list(as_frame.columns) == names
    np.testing.assert_allclose(as_frame.to_numpy(), Z)
    restored = pickle.loads(pickle.dumps(pre))  # what joblib and MLflow store
    np.testing.assert_array_equal(restored.transform(X), Z)


# ------------------------------------------------------------ featurize stage
def test_feature_report(xy):
    from houseprices.stages.featurize import feature_report

    X, y = xy
    params = parse_params({"features": {"pca": {"enabled": True, "n_components": 9}}})
    report, missing, variance = feature_report(params, X, y)
    assert report["input_features"] == 79
    assert report["output_features"] == report["pca_components_kept"] == 9
    assert 0 < report["pca_explained_variance_kept"] < 1
    assert report["flag_inputs"] == 5
    assert report["numeric_inputs"] + report["flag_inputs"] + report["categorical_inputs"] == 79 + 10  # + domain
    assert "LotArea" in report["skewed_column_names"] and len(report["skewed_column_names"]) == report["skewed_columns"]
    lot = missing.set_index("column").loc["LotFrontage"]
    assert lot["missing_rate"] == pytest.approx(X["LotFrontage"].isna().mean())
    pool = missing.set_index("column").loc["PoolQC"]
    assert pool["missing_rate"] > 0.9 and pool["imputed_rate"] == 0  # NA means none
    assert variance["cumulative_explained_variance"].is_monotonic_increasing
    assert variance["cumulative_explained_variance"].iloc[-1] == pytest.approx(1)


def test_featurize_stage_writes_report(xy, tmp_path, monkeypatch):
    from houseprices.stages import featurize

    X, y = xy
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    X.to_parquet(prepared / "X_train.parquet")
    pd.DataFrame({"Id": X["Id"], "log_price": y}).to_parquet(prepared / "y_train.parquet")
    X.head(20).to_parquet(prepared / "X_test.parquet")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(featurize.Tracker, "open", classmethod(lambda cls, params, *a, **k: cls(params)))  # off
    featurize.run(parse_params({}))
    report = json.loads((tmp_path / "metrics" / "features.json").read_text())
    assert report["output_features"] > 200 and report["skewed_columns"] > 5
    rates = pd.read_csv(tmp_path / "plots" / "features" / "missing_rate.csv")
    assert (rates["missing_rate"] > 0).all() and "LotFrontage" in set(rates["column"])
    assert len(pd.read_csv(tmp_path / "plots" / "features" / "pca_variance.csv")) > 50
