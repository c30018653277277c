import pytest
import yaml

from houseprices.config import MLPConfig, load_params, parse_params
from houseprices.errors import ConfigError
from conftest import ROOT


def test_committed_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert params.models
    assert all(m in params.models for m in params.ensemble_members)


def test_committed_params_spell_out_every_key():
    """DVC tracks only keys present in params.yaml, so defaults must not hide any."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = parse_params(raw)

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out

    dumped = params.model_dump(mode="json", exclude={"search"})
    assert keys(dumped) <= keys(raw)


@pytest.mark.parametrize("raw, key", [
    ({"sed": 1}, "sed"),
    ({"cv": {"fold": 3}}, "cv.fold"),
    ({"models": {"mlp": {"kind": "mlp", "lrr": 0.1}}}, "models.mlp.lrr"),
    ({"features": {"skew": {"treshold": 1}}}, "features.skew.treshold"),
])
def test_unknown_key_is_named(raw, key):
    with pytest.raises(ConfigError, match=rf"{key}: unknown key"):
        parse_params(raw)


@pytest.mark.parametrize("raw, key", [
    ({"cv": {"folds": 1}}, "cv.folds"),
    ({"cv": {"folds": "five"}}, "cv.folds"),
    ({"models": {"mlp": {"kind": "mlp", "lr": -1}}}, "models.mlp.lr"),
    ({"models": {"mlp": {"kind": "mlp", "dropout": 1.5}}}, "models.mlp.dropout"),
    ({"features": {"scaling": "zscore"}}, "features.scaling"),
])
def test_bad_value_is_named(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_params(raw)


def test_missing_or_unknown_model_kind():
    with pytest.raises(ConfigError, match="models.m: missing 'kind'"):
        parse_params({"models": {"m": {"lr": 0.1}}})
    with pytest.raises(ConfigError, match="unknown kind 'svm'"):
        parse_params({"models": {"m": {"kind": "svm"}}})


def test_zero_init_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="symmetry"):
        parse_params({"models": {"m": {"kind": "mlp", "init": "zeros"}}})


def test_ensemble_members_must_exist():
    with pytest.raises(ConfigError, match="ensemble.members names unknown models"):
        parse_params({"models": {"m": {"kind": "ridge"}}, "ensemble": {"members": ["x"]}})


def test_early_stopping_needs_a_validation_split():
    with pytest.raises(ConfigError, match="valid_fraction"):
        parse_params({"models": {"m": {"kind": "mlp", "early_stopping": {"enabled": True}}}})


def test_load_params_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_params(bad)


def test_defaults_build():
    assert MLPConfig().hidden == [128]
