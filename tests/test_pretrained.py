"""Trained nets in one line: resnet_repro.pretrained and the clone's torch.hub entry point."""

import pytest
import torch

import resnet_repro
from resnet_repro import hub
from resnet_repro.config import compose_train
from resnet_repro.data import CIFAR10DataModule
from resnet_repro.data.sources import OFFICIAL_CONTENT
from resnet_repro.runs import hardware
from resnet_repro.training.launch import train
from tests.test_sweep import ROOT


@pytest.fixture
def committed_runs(tmp_path, monkeypatch, smoke_overrides):
    """A finished smoke-profile ResNet-8 on data with the official release's content, in a
    runs folder laid out as results/runs/ is."""
    monkeypatch.setattr(hub, "RUNS", tmp_path / "results-runs")
    monkeypatch.setattr(CIFAR10DataModule, "fingerprint", property(lambda _: OFFICIAL_CONTENT))
    cfg = compose_train([*smoke_overrides, "trainer.enable_progress_bar=false",
                         f"paths.runs={tmp_path / 'results-runs' / 'smoke'}"])
    return train(cfg)


def test_a_trained_net_loads_by_its_name_with_its_record(committed_runs):
    net = resnet_repro.pretrained("resnet-8", profile="smoke")
    assert not net.training and net.name == "resnet-8"
    trained = torch.load(committed_runs.directory / "model.pt")
    assert all(torch.equal(net.state_dict()[k], trained[k]) for k in trained)
    record = net.record
    assert record["seed"] == 0 and record["iterations"] == 20 and record["precision"] == "32-true"
    assert 0 <= record["test_error"] <= 100 and record["run"] == str(committed_runs.directory)
    assert len(record["commits"]) == 1 and len(record["commits"][0]) == 40  # one attempt
    machine, trained_on = hardware(), record["hardware"]
    assert trained_on.startswith(machine["device"]) and f"torch {machine['torch']}" in trained_on


def test_a_net_without_a_finished_run_names_what_exists(committed_runs):
    with pytest.raises(LookupError, match=r"no finished plain-8 \(seed 0\) at profile 'smoke'; "
                                          r"finished at that profile: resnet-8 \(seed 0\)"):
        resnet_repro.pretrained("plain-8", profile="smoke")
    with pytest.raises(ValueError, match="plain-<depth> or resnet-<depth>"):
        resnet_repro.pretrained("vgg-19", profile="smoke")


def test_torch_hub_loads_it_from_the_clone(committed_runs):
    net = torch.hub.load(str(ROOT), "pretrained", "resnet-8", profile="smoke", source="local")
    assert net.record["run"] == str(committed_runs.directory)
