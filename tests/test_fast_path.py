"""The fast path's code on the CPU (its speed is measured by make bench, not here): data held on
the training device, torch.compile, bf16, and sweep points run in parallel by joblib."""

import json

import torch

from resnet_repro.bf16 import native_bf16
from resnet_repro.data import CIFAR10DataModule
from resnet_repro.runs import run_key
from resnet_repro.training.launch import train
from tests.test_sweep import run_script
from tests.test_training import make_config


def test_data_on_a_device_stays_there_through_sampling_and_augmentation(tiny_archive, tmp_path):
    datamodule = CIFAR10DataModule(tiny_archive, cache_dir=tmp_path, batch_size=16)
    datamodule.setup()
    datamodule.move_to("meta")  # a device without storage: any copy back to the CPU would fail
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.device.type == labels.device.type == "meta" and images.shape[0] == 16
    assert datamodule.prepare(images, training=True).device.type == "meta"
    test_images, _ = next(iter(datamodule.val_dataloader()[0]))
    assert test_images.device.type == "meta"


def test_compiled_net_trains_and_keeps_its_plain_state_dict_keys(smoke_overrides):
    compiled = make_config(*smoke_overrides, "module.compile={backend:eager}")
    record = train(compiled)
    assert record.status == "done"
    weights = torch.load(record.directory / "model.pt")
    assert not any("_orig_mod" in key for key in weights)
    # compiling changes how the math runs, not the math: the run is the same run
    assert run_key(compiled, "x") == run_key(make_config(*smoke_overrides), "x")


def test_bf16_runs_and_is_a_different_run_from_fp32(smoke_overrides):
    bf16 = make_config(*smoke_overrides, "trainer.precision=bf16-mixed", "data.batch_size=16")
    record = train(bf16)
    assert record.status == "done"
    kernels = "native" if native_bf16("cpu") else "fp32"  # tests/test_bf16.py: both alike
    assert record.data["attempts"][-1]["bf16_kernels"] == kernels
    fp32 = make_config(*smoke_overrides, "data.batch_size=16")
    assert run_key(bf16, "x") != run_key(fp32, "x")


def test_joblib_launcher_runs_sweep_points_in_parallel_processes(tiny_archive, tmp_path):
    result = run_script(
        "train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=1",
        "profile=smoke", "model.depth=8,14", f"data.source={tiny_archive}",
        f"data.cache_dir={tmp_path / 'cache'}", f"paths.runs={tmp_path / 'runs'}",
        "trainer.enable_progress_bar=false", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/run.json")]
    assert sorted(r["net"] for r in records) == ["resnet-14", "resnet-8"]
    assert all(r["status"] == "done" for r in records)
    assert all(r["attempts"][0]["torch_threads"] == 1 for r in records)
