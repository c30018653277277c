"""``@champion`` shared by a team: the best CV holds it, a command moves it by hand, two claims
at once settle on the better one; the experiment carries the tags MLflow's UI reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import ROOT, new_store
from houseprices.cli import main
from houseprices.tracking.registry import CHAMPION, CONTENDER_TAG, claim, describe, promote
from houseprices.tracking.store import ensure_experiment
from houseprices.tracking.tags import EXPERIMENT_TAGS

NAME = "houseprices-ensemble"


@pytest.fixture
def registry(tmp_path):
    """A SQLite store with a registered model and ``add(cv)`` -> a new version whose run has that CV."""
    client = MlflowClient(new_store(tmp_path / "mlflow.db"))
    experiment = client.create_experiment("houseprices", artifact_location=(tmp_path / "mlruns").as_uri())
    client.create_registered_model(NAME)

    def add(cv: float | None):
        run = client.create_run(experiment)
        if cv is not None:
            client.log_metric(run.info.run_id, "cv_log_rmse", cv)
        client.set_terminated(run.info.run_id)
        return client.create_model_version(NAME, f"runs:/{run.info.run_id}/model", run.info.run_id)

    return client, add


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(NAME, CHAMPION).version)


def test_the_champion_moves_only_to_a_better_cv(registry):
    client, add = registry
    first = claim(client, NAME, add(0.13))
    assert first.won and champion(client) == "1"
    worse = claim(client, NAME, add(0.14))
    assert not worse.won and (worse.champion, worse.champion_cv) == ("1", 0.13)
    assert champion(client) == "1"
    tie = claim(client, NAME, add(0.13))
    assert not tie.won and champion(client) == "1"  # the older version was there first
    better = claim(client, NAME, add(0.12))
    assert better.won and champion(client) == "4"


def test_a_version_without_a_cv_never_beats_one_with_a_cv(registry):
    client, add = registry
    claim(client, NAME, add(0.2))
    assert not claim(client, NAME, add(None)).won
    assert champion(client) == "1"


def test_a_champion_set_before_the_rule_defends_its_place(registry):
    client, add = registry
    old = add(0.12)
    client.set_registered_model_alias(NAME, CHAMPION, old.version)  # as the earlier code did
    assert not claim(client, NAME, add(0.13)).won
    assert champion(client) == "1"
    assert client.get_model_version(NAME, "1").tags[CONTENDER_TAG] == "true"


def test_promote_moves_it_by_hand_and_the_rule_goes_on_from_there(registry):
    client, add = registry
    claim(client, NAME, add(0.12))
    worse = add(0.15)
    promote(client, NAME, worse.version)
    assert champion(client) == "2"
    assert "version 2: @champion, CV log-RMSE 0.15000" in describe(client, NAME)
    assert claim(client, NAME, add(0.14)).won  # beats the promoted version, not the old champion
    assert champion(client) == "3"


def test_two_claims_at_once_settle_on_the_better(registry):
    """A's alias write lands after B's better claim has settled: A sets the alias again."""
    client, add = registry
    claim(client, NAME, add(0.13))
    a, b = add(0.12), add(0.11)
    real_set = client.set_registered_model_alias
    calls = []

    def slow_write(name, alias, version):
        calls.append(version)
        if len(calls) == 1:  # B claims while A's first write is in flight
            client.set_registered_model_alias = real_set
            claim(client, NAME, b)
            client.set_registered_model_alias = slow_write
        real_set(name, alias, version)

    client.set_registered_model_alias = slow_write
    outcome = claim(client, NAME, a)
    assert str(calls[0]) == "2"  # A first saw itself as the best...
    assert champion(client) == "3" and outcome.champion == "3" and not outcome.won  # ...and then B


def test_a_claim_that_loses_the_race_to_create_the_alias_looks_again(registry):
    """MLflow sets an alias by reading, then inserting: of two first claims at once, one insert
    fails on the alias's key (a team's PostgreSQL server). That claim reads again."""
    client, add = registry
    a, b = add(0.12), add(0.13)
    real_set = client.set_registered_model_alias

    def raced(name, alias, version):  # B's claim creates the alias between A's read and A's insert
        client.set_registered_model_alias = real_set
        claim(client, NAME, b)
        raise MlflowException('duplicate key value violates unique constraint "registered_model_alias_pk"')

    client.set_registered_model_alias = raced
    outcome = claim(client, NAME, a)
    assert outcome.won and champion(client) == str(a.version)


def test_the_command_shows_and_moves_the_champion(registry, tmp_path, monkeypatch, capsys):
    client, add = registry
    claim(client, NAME, add(0.12))
    add(0.2)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tracking"]["uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert main(["champion"]) == 0
    assert "version 1: @champion, CV log-RMSE 0.12000" in capsys.readouterr().out
    assert main(["champion", "--version", "9"]) == 2
    err = capsys.readouterr().err
    assert "houseprices champion: error: registered model houseprices-ensemble has no version 9" in err
    assert champion(client) == "1"
    assert main(["champion", "--version", "2"]) == 0
    assert champion(client) == "2"


def test_the_experiment_carries_the_tags_mlflows_ui_reads(tmp_path):
    uri = new_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    created = client.get_experiment(ensure_experiment(client, uri, "houseprices", Path(tmp_path)))
    assert {k: created.tags.get(k) for k in EXPERIMENT_TAGS} == EXPERIMENT_TAGS
    assert EXPERIMENT_TAGS["mlflow.experimentKind"] == "custom_model_development"
    assert EXPERIMENT_TAGS["mlflow.experiment.primaryMetric.name"] == "cv_log_rmse"
    old = client.create_experiment("before-the-tags")  # an experiment made by an earlier version
    ensure_experiment(client, uri, "before-the-tags", Path(tmp_path))
    assert {k: client.get_experiment(old).tags.get(k) for k in EXPERIMENT_TAGS} == EXPERIMENT_TAGS
