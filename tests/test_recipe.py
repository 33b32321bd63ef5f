"""The typed, versioned recipe: what is written, what is read back, and what is refused."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from freqprint.errors import InvalidArgument
from freqprint.io.checkpoint import load_model, read_recipe, save_model
from freqprint.io.recipe import RECIPE_VERSION, Recipe
from freqprint.models import create_model

BASE = {
    "model": "smallcnn",
    "kwargs": {"num_classes": 10, "in_channels": 1, "width": 8},
    "input_shape": [1, 28, 28],
    "num_classes": 10,
    "pseudo_class": False,
    "fingerprint": None,
    "init": {"scheme": "seed", "seed": 3},
}


def test_a_recipe_round_trips_through_a_file_with_its_version(tmp_path):
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=8)
    path = save_model(model, tmp_path / "m.safetensors", Recipe.from_dict(BASE))
    rec = read_recipe(path)
    assert isinstance(rec, Recipe) and rec.version == RECIPE_VERSION and rec.init == {"scheme": "seed", "seed": 3}
    assert rec["model"] == "smallcnn" and dict(rec) == {**BASE, "version": RECIPE_VERSION}  # the mapping view
    back, rec2 = load_model(path)
    assert rec2 == rec and isinstance(back, torch.nn.Module)


def test_a_file_from_before_the_version_field_reads_as_version_0(tmp_path):
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=8)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata={"freqprint.recipe": json.dumps(BASE)})
    rec = read_recipe(tmp_path / "old.safetensors")
    assert rec is not None and rec.version == 0 and rec.model == "smallcnn"
    load_model(tmp_path / "old.safetensors")  # still rebuilds


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": RECIPE_VERSION + 1}, "newer freqprint"),
        ({"init": {"scheme": "secret"}}, "'init'"),
        ({"init": {"scheme": "magic", "seed": 1}}, "'init'"),
        ({"input_shape": [1, -28, 28]}, "input_shape"),
        ({"num_classes": 0}, "num_classes"),
        ({"model": ""}, "model"),
        ({"pseudo_class": "yes"}, "pseudo_class"),
    ],
)
def test_an_invalid_or_newer_recipe_is_refused_with_its_field(change, message):
    with pytest.raises(InvalidArgument, match=message):
        Recipe.from_dict({**BASE, **change})


def test_a_recipe_that_is_not_json_is_a_refusal_not_a_crash(tmp_path):
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=8)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"freqprint.recipe": "{not json"})
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        read_recipe(tmp_path / "bad.safetensors")


def test_unknown_fields_are_kept():
    rec = Recipe.from_dict({**BASE, "task": "classification"})
    assert rec.extra == {"task": "classification"} and rec.to_dict()["task"] == "classification"
