"""core.weights: one record for every weight file and one loader (checksum, weights-only read,
layout conversion, strict load, checked install, fetch by making or downloading)."""

import hashlib
from pathlib import Path

import pytest
import torch
from torch import nn

from core import weights
from core.weights import WeightsError, WeightsMissing, WeightsRecord


def record(**fields) -> WeightsRecord:
    defaults = {
        "name": "tiny",
        "label": "Tiny net",
        "file": "tiny.pth",
        "source": "https://example.org/tiny",
        "licence": "MIT",
        "layout": "a Linear(2, 1) state dict",
    }
    return WeightsRecord(**{**defaults, **fields})


def saved(path: Path, state) -> Path:
    torch.save(state, path)
    return path


def test_a_missing_file_names_the_file_the_folder_and_the_commands(tmp_path):
    with pytest.raises(WeightsMissing) as error:
        weights.locate(record(), tmp_path)
    message = str(error.value)
    assert "tiny.pth" in message and str(tmp_path) in message and "https://example.org/tiny" in message
    assert "import_weights tiny /path/to/tiny.pth" in message and "fetch_weights" not in message  # no URL
    with pytest.raises(WeightsMissing, match="fetch_weights tiny"):
        weights.locate(record(url="https://example.org/tiny.pth"), tmp_path)


def test_the_loader_unwraps_converts_and_loads_strictly(tmp_path):
    network = nn.Linear(2, 1)
    path = saved(tmp_path / "tiny.pth", {"params_ema": {f"module.{k}": v for k, v in network.state_dict().items()}})
    state, provenance = weights.load_state(record(), path)
    fresh = nn.Linear(2, 1)
    weights.load_strict(fresh, state, record())
    assert torch.equal(fresh.weight, network.weight)
    assert provenance == {"file": "tiny.pth", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    with pytest.raises(WeightsError, match="does not fit Tiny net"):
        weights.load_strict(nn.Linear(3, 1), state, record())


def test_a_foreign_layout_a_pickle_with_code_and_an_altered_file_are_refused(tmp_path):
    path = saved(tmp_path / "tiny.pth", nn.Linear(2, 1).state_dict())

    def convert(state):
        raise KeyError("no 'fc.weight'")

    with pytest.raises(WeightsError, match="not a Linear\\(2, 1\\) state dict"):
        weights.load_state(record(), path, convert=convert)
    torch.save(nn.Linear(2, 1), tmp_path / "module.pth")  # a pickled module: code, not tensors
    with pytest.raises(WeightsError, match="cannot be read as a PyTorch checkpoint"):
        weights.read_state(tmp_path / "module.pth")
    with pytest.raises(WeightsError, match="not the published"):
        weights.load_state(record(sha256="0" * 64), path)


def test_install_checks_the_name_hash_and_the_record_check_before_copying(tmp_path):
    source = saved(tmp_path / "lab.pth", nn.Linear(2, 1).state_dict())
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target_dir = tmp_path / "weights"
    with pytest.raises(WeightsError, match="does not start with 00000000"):
        weights.install(record(file="tiny-00000000.pth"), source, target_dir)
    seen = []

    def refuse(path):
        seen.append(path)
        raise WeightsError("not the network's layout")

    with pytest.raises(WeightsError, match="layout"):
        weights.install(record(check=refuse), source, target_dir)
    assert seen == [source] and not list(target_dir.glob("*"))  # nothing installed
    installed = weights.install(record(file=f"tiny-{digest[:8]}.pth"), source, target_dir)
    assert installed.read_bytes() == source.read_bytes() and not list(target_dir.glob(".*partial"))


def test_fetch_makes_a_made_file_and_refuses_without_a_way(tmp_path):
    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return saved(folder / "made.pth", {"w": torch.zeros(1)})

    made = record(name="made", file="made.pth", make=make)
    assert weights.fetch(made, tmp_path) == [tmp_path / "made.pth"]
    assert weights.fetch(made, tmp_path) == [tmp_path / "made.pth"]  # already there
    with pytest.raises(WeightsMissing, match="tiny.pth"):
        weights.fetch(record(), tmp_path)
