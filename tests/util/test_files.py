"""Pickled models carry a digest, so a stage can check one without unpickling it."""

from __future__ import annotations

import pytest

from houseprices.errors import InputFileError
from houseprices.util.files import digest_path, dump_model, load_model, verify_model


def test_a_dumped_model_verifies_and_loads(tmp_path):
    path = tmp_path / "models/members/ridge/model.joblib"
    path.parent.mkdir(parents=True)
    dump_model(path, {"weights": [1.0, 2.0]})
    verify_model(path)
    assert load_model(path) == {"weights": [1.0, 2.0]}


@pytest.mark.parametrize("damage", ["truncated", "no digest"])
def test_a_damaged_model_is_one_line_naming_it(tmp_path, damage):
    path = tmp_path / "model.joblib"
    dump_model(path, list(range(1000)))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    else:
        digest_path(path).unlink()
    with pytest.raises(InputFileError, match=r"model\.joblib: cannot be read") as err:
        verify_model(path)
    assert "\n" not in str(err.value)
