import re

import pytest
import yaml

from conftest import ROOT
from houseprices.config.params import Params, load_params, parse_params
from houseprices.config.search import load_search
from houseprices.errors import ConfigError


def test_code_defaults_equal_the_committed_params():
    """A key left out of a params file means what params.yaml says."""
    params = load_params(ROOT / "params.yaml")
    for name, cfg in params.models.items():
        assert cfg == type(cfg)(kind=cfg.kind), f"models.{name} differs from the {cfg.kind} defaults"
    sections = {"seed", "data", "cv", "features", "submission", "tracking"}
    assert Params().model_dump(include=sections) == params.model_dump(include=sections)


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


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"sed": 1}, "sed"),
        ({"cv": {"fold": 3}}, "cv.fold"),
        ({"models": {"mlp": {"kind": "mlp", "lrr": 0.1}}}, "models.mlp.lrr"),
        ({"features": {"skew": {"treshold": 1}}}, "features.skew.treshold"),
    ],
)
def test_unknown_key_is_named(raw, key):
    with pytest.raises(ConfigError, match=rf"{key}: unknown key"):
        parse_params(raw)


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"cv": {"folds": 1}}, "cv.folds"),
        ({"cv": {"folds": "five"}}, "cv.folds"),
        ({"models": {"mlp": {"kind": "mlp", "lr": -1}}}, "models.mlp.lr"),
        ({"models": {"mlp": {"kind": "mlp", "dropout": 1.5}}}, "models.mlp.dropout"),
        ({"features": {"scaling": "zscore"}}, "features.scaling"),
    ],
)
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


def test_a_hyphenated_model_name_stays_in_the_error_path():
    with pytest.raises(ConfigError, match=r"^params\.yaml: models\.mlp-wide\.lrr: unknown key"):
        parse_params({"models": {"mlp-wide": {"kind": "mlp", "lrr": 0.1}}})


@pytest.mark.parametrize(
    "space, message",
    [
        ({"low": 1.0, "high": 0.1}, r"models\.m\.space\.lr: low \(1\.0\) must be below high \(0\.1\)"),
        ({"low": 1.0}, r"models\.m\.space\.lr\.high: Field required"),
        ({"choices": []}, r"models\.m\.space\.lr\.choices: List should have at least 1 item"),
    ],
)
def test_a_bad_search_range_is_one_line_about_the_closest_form(space, message, tmp_path):
    params = parse_params({"models": {"m": {"kind": "mlp"}}, "ensemble": {"members": ["m"]}})
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"models": {"m": {"space": {"lr": space}}}}))
    with pytest.raises(ConfigError) as err:
        load_search(path, params, "m")
    assert "\n" not in str(err.value) and ";" not in str(err.value)
    assert re.fullmatch(rf"{re.escape(str(path))}: {message}.*", str(err.value))


def test_a_list_that_fails_inside_is_reported_as_a_list():
    with pytest.raises(ConfigError, match=r"^params\.yaml: models\.m\.dropout\.1: Input should be less than 1$"):
        parse_params({"models": {"m": {"kind": "mlp", "hidden": [8, 8], "dropout": [0.1, 2]}}})
