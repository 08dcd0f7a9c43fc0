"""ImageNet data, augmentation, 10-crop test, plateau schedule, DDP and the smoke fig4 sweep."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from resnet_repro.data import DataSourceError, ImageNetDataModule
from resnet_repro.data.distributed import batch_share
from resnet_repro.data.imagenet_transforms import (
    CenterCrop,
    RandomScaleCrop,
    TenCrop,
    pca_lighting,
    random_flip,
)
from resnet_repro.training import ImageClassifier, PlateauSchedule
from tests.tiny_data import write_image_folder, write_tiny_imagenet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_imagenet(tmp_path_factory) -> Path:
    return write_tiny_imagenet(tmp_path_factory.mktemp("imagenet") / "tiny")


def photo(height=375, width=500) -> torch.Tensor:
    """A uint8 image whose pixels encode their position, so crops can be located."""
    rows = torch.arange(height)[:, None].expand(height, width)
    columns = torch.arange(width)[None, :].expand(height, width)
    return torch.stack([rows % 256, columns % 256, (rows + columns) % 256]).to(torch.uint8)


def test_scale_augmentation_gives_224_crops_at_random_scales_and_places():
    torch.manual_seed(0)
    transform = RandomScaleCrop(256, 480, 224)
    crops = [transform(photo()) for _ in range(6)]
    assert all(c.shape == (3, 224, 224) and c.dtype == torch.uint8 for c in crops)
    assert len({c.float().sum().item() for c in crops}) == 6
    portrait = transform(photo(500, 300))
    assert portrait.shape == (3, 224, 224)


def test_scale_augmentation_resizes_the_shorter_side_into_256_to_480(monkeypatch):
    sizes = []
    import torchvision.transforms.v2.functional as TF

    original = TF.resize

    def spy(image, size, **kwargs):
        sizes.append(size)
        return original(image, size, **kwargs)

    monkeypatch.setattr("resnet_repro.data.imagenet_transforms.TF.resize", spy)
    transform = RandomScaleCrop(256, 480, 224)
    for _ in range(40):
        transform(photo(100, 150))
    assert min(sizes) >= 256 and max(sizes) <= 480 and len(set(sizes)) > 10


def test_center_and_ten_crops():
    image = photo(256, 340)  # even margins: the center crop's mirror is a crop of the mirror
    center = CenterCrop(256, 224)(image)
    assert center.shape == (3, 224, 224)
    crops = TenCrop(256, 224)(image)
    assert crops.shape == (10, 3, 224, 224)
    assert torch.equal(crops[4], center)  # the fifth crop is the center
    first, mirrored = crops[:5], crops[5:]
    for crop in mirrored:
        assert any(torch.equal(crop, original.flip(-1)) for original in first)
    assert len({tuple(c[:, 0, 0].tolist()) for c in first}) == 5  # five different places


def test_batch_flip_mirrors_about_half_the_images_and_nothing_else():
    torch.manual_seed(0)
    images = torch.rand(64, 3, 8, 8)
    flipped = random_flip(images)
    mirrored = [torch.equal(f, i.flip(-1)) for f, i in zip(flipped, images, strict=True)]
    kept = [torch.equal(f, i) for f, i in zip(flipped, images, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 16 < sum(mirrored) < 48


def test_pca_lighting_shifts_each_image_by_one_colour():
    torch.manual_seed(0)
    images = torch.rand(8, 3, 16, 16)
    shifted = pca_lighting(images, 0.1)
    offset = shifted - images
    assert torch.allclose(offset, offset[:, :, :1, :1].expand_as(offset), atol=1e-6)
    assert offset[:, :, 0, 0].abs().max() < 0.2 and offset.abs().sum() > 0
    assert not torch.allclose(offset[0, :, 0, 0], offset[1, :, 0, 0])
    assert torch.equal(pca_lighting(images, 0.0), images)


def make_datamodule(source, tmp_path, **overrides):
    settings = dict(cache_dir=tmp_path / "cache", batch_size=8, eval_batch_size=10,
                    num_workers=0, scale=(40, 56), crop_size=32, test_size=40, mean_images=50)
    return ImageNetDataModule(source, **{**settings, **overrides})


def test_loaders_give_uint8_crops_and_prepare_centres_them(tiny_imagenet, tmp_path):
    datamodule = make_datamodule(tiny_imagenet, tmp_path)
    datamodule.setup()
    assert datamodule.classes == [f"n0000000{i}" for i in range(4)]
    assert datamodule.pixel_mean.shape == (3, 32, 32)
    assert list((tmp_path / "cache").glob("imagenet-mean-*.pt"))
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and set(labels.tolist()) <= {0, 1, 2, 3}
    test_images, _ = next(iter(datamodule.test_dataloader()[0]))
    assert test_images.shape == (1, 10, 3, 32, 32)
    evaluated = datamodule.prepare(images, training=False)
    assert torch.allclose(evaluated, images.float() / 255 - datamodule.pixel_mean)
    assert evaluated.min() >= -1 and evaluated.max() <= 1
    torch.manual_seed(0)
    trained = datamodule.prepare(images, training=True)
    assert trained.shape == evaluated.shape and not torch.allclose(trained, evaluated)


def test_every_ddp_process_computes_the_same_whole_pixel_mean(tiny_imagenet, tmp_path):
    alone = make_datamodule(tiny_imagenet, tmp_path / "alone")
    alone.setup()
    second = make_datamodule(tiny_imagenet, tmp_path / "second")
    second.trainer = type("Trainer", (), {"global_rank": 1, "world_size": 2})()
    second.setup()
    assert torch.allclose(alone.pixel_mean, second.pixel_mean)


def test_missing_folder_and_unequal_classes_are_explained(tiny_imagenet, tmp_path):
    with pytest.raises(DataSourceError, match="does not exist.*data.source="):
        make_datamodule(tmp_path / "nowhere", tmp_path).setup()
    odd = write_image_folder(tmp_path / "odd", {"train": 2}, ["a", "b"], (48, 48))
    write_image_folder(odd, {"val": 2}, ["a", "c"], (48, 48))
    with pytest.raises(DataSourceError, match="different classes"):
        make_datamodule(odd, tmp_path).setup()


def test_total_batch_is_shared_among_the_processes():
    assert batch_share(256, 8) == 32
    with pytest.raises(ValueError, match="batch_size=10.*4 processes"):
        batch_share(10, 4)


class FirstPixels(nn.Module):
    """Logits = the first two pixel values of channel 0: a crop decides its own logits."""

    def forward(self, images):
        return images[:, 0, 0, :2]


def test_ten_crop_test_averages_the_crops_logits():
    module = ImageClassifier(FirstPixels(), optimizer=None, schedule=None, channels_last=False)
    crops = torch.zeros(1, 10, 3, 4, 4)
    crops[0, :9, 0, 0, 0] = 1.0     # nine crops vote for class 0, weakly
    crops[0, 9, 0, 0, 1] = 100.0    # one crop is sure of class 1
    module.test_step((crops, torch.tensor([1])), 0)
    loss, top1, top5 = module.test_windows[0].pop()
    assert top1 == 0.0 and top5 == 0.0  # the mean logits (0.9, 10) pick class 1


def test_multiscale_test_averages_over_scales_and_mirror_images():
    module = ImageClassifier(FirstPixels(), optimizer=None, schedule=None, channels_last=False)
    small, large = torch.zeros(1, 3, 4, 6), torch.zeros(1, 3, 8, 12)
    small[0, 0, 0, 0] = 1.0       # class 0 at the small scale, not in its mirror image
    large[0, 0, 0, -2] = 10.0     # class 1 only in the large scale's mirror image
    module.test_step(([small, large], torch.tensor([1])), 0, dataloader_idx=1)
    _, top1, _ = module.test_windows[1].pop()
    assert top1 == 0.0  # mean logits (0.25, 2.5) pick class 1


def test_multiscale_loader_gives_whole_images_at_each_scale(tiny_imagenet, tmp_path):
    datamodule = make_datamodule(tiny_imagenet, tmp_path, test_scales=[32, 48])
    datamodule.setup()
    ten_crop, multiscale = datamodule.test_dataloader()
    assert datamodule.test_names == ["val_10crop", "val_multiscale"]
    images, labels = next(iter(multiscale))
    assert [min(image.shape[-2:]) for image in images] == [32, 48] and len(labels) == 1
    assert images[1].shape == (1, 3, 48, 64)  # 120 x 90 keeps its aspect ratio
    prepared = datamodule.prepare(images, training=False)
    assert [p.shape for p in prepared] == [i.shape for i in images]


def test_plateau_schedule_divides_by_ten_after_patience_and_is_checkpointed():
    schedule = PlateauSchedule(patience=2, threshold=0.5, max_reductions=1)
    for error in (50.0, 40.0, 39.8, 39.9):
        schedule.observe(error)
    assert schedule(0) == pytest.approx(0.1) and schedule.reductions == 1
    for error in (39.0, 39.0, 39.0, 39.0):
        schedule.observe(error)
    assert schedule(0) == pytest.approx(0.1)  # at most max_reductions
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    state = LambdaLR(optimizer, schedule).state_dict()
    restored = PlateauSchedule()
    LambdaLR(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), restored).load_state_dict(
        state)
    assert restored.factor == pytest.approx(0.1) and restored.reductions == 1


def test_ddp_on_two_cpu_processes_trains_on_disjoint_shards(tiny_imagenet, tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tests" / "scripts" / "ddp_probe.py"),
                    str(tiny_imagenet), str(tmp_path)], check=True, cwd=ROOT, timeout=600,
                   capture_output=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    shards = [set(r["indices"]) for r in ranks]
    assert not shards[0] & shards[1]
    assert len(shards[0] | shards[1]) == ranks[0]["dataset_size"]
    assert all(r["batch_sizes"] == [4, 4, 4, 4] and r["step"] == 4 for r in ranks)  # 8 in all
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # gradients were averaged


def test_ddp_run_through_the_entry_point_is_recorded_once(tiny_imagenet, tmp_path):
    subprocess.run(
        [sys.executable, "experiments/train.py", "experiment=fig4", "profile=smoke",
         "model.depth=18", f"data.source={tiny_imagenet}", f"data.cache_dir={tmp_path / 'c'}",
         f"paths.runs={tmp_path / 'runs'}", "trainer.accelerator=cpu", "trainer.devices=2",
         "trainer.strategy=ddp", "trainer.enable_progress_bar=false",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        check=True, cwd=ROOT, capture_output=True, timeout=600,
    )
    [run] = (tmp_path / "runs").iterdir()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "done" and len(record["attempts"]) == 1
    assert [p.parent.name for p in run.glob("attempt-*/metrics.csv")] == ["attempt-0"]
    metrics = pd.read_csv(run / "attempt-0" / "metrics.csv")
    assert metrics["val_10crop/err"].notna().sum() == 1 and (run / "model.pt").exists()


def test_smoke_fig4_sweep_writes_runs_a_figure_and_table2(tiny_imagenet, tmp_path):
    overrides = ["experiment=fig4", "profile=smoke", f"data.source={tiny_imagenet}",
                 f"data.cache_dir={tmp_path / 'cache'}", f"paths.runs={tmp_path / 'runs'}",
                 f"paths.results={tmp_path / 'results'}", "trainer.enable_progress_bar=false",
                 f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    subprocess.run([sys.executable, "experiments/train.py", "-m", *overrides], check=True,
                   cwd=ROOT, capture_output=True, timeout=600)
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 4
    assert all(json.loads((r / "run.json").read_text())["status"] == "done" for r in runs)
    subprocess.run([sys.executable, "experiments/analyze.py", *overrides[:-2]], check=True,
                   cwd=ROOT, capture_output=True, timeout=600)
    out = tmp_path / "results" / "fig4" / "smoke"
    assert (out / "fig4.png").exists() and (out / "fig4.pdf").exists()
    table = pd.read_csv(out / "table2.csv")
    assert list(table["net"]) == ["plain-18", "plain-34", "resnet-18-A", "resnet-34-A"]
    assert table["top1_mean"].between(0, 100).all() and list(table["paper_top1"]) == [
        27.94, 28.54, 27.88, 25.03]
    summary = pd.read_csv(out / "summary.csv")
    assert summary["val_error"].notna().all() and summary["top5_10crop"].notna().all()


def test_sweep_over_several_devices_without_a_launcher_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "experiments/train.py", "-m", "experiment=fig4", "profile=smoke",
         "trainer.devices=2", f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0 and "torchrun" in result.stderr + result.stdout
