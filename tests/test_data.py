import gzip
import json
import tarfile
from pathlib import Path

import pytest
import torch

from resnet_repro.data import CIFAR10DataModule, DataSourceError, load_source, source_fingerprint
from resnet_repro.data import sources as sources_module
from resnet_repro.data.sources import OFFICIAL_CONTENT, content_fingerprint
from tests.conftest import CLASSES, TEST_PER_CLASS, TRAIN_PER_CLASS, write_tar_gz


def test_archive_decodes_to_uint8_tensors_with_labels_in_class_order(tiny_archive, tmp_path):
    data = load_source(tiny_archive, tmp_path)
    images, labels = data["train"]
    assert images.dtype == torch.uint8 and images.shape == (10 * TRAIN_PER_CLASS, 3, 32, 32)
    assert data["test"][0].shape == (10 * TEST_PER_CLASS, 3, 32, 32)
    assert data["classes"] == CLASSES
    assert torch.equal(labels.bincount(), torch.full((10,), TRAIN_PER_CLASS))
    # the fixture's red channel grows with the label, so decoding kept image and label together
    red = images[:, 0].float().mean(dim=(1, 2))
    assert torch.all(red[labels == 9].mean() > red[labels == 0].mean() + 100)


def test_folder_and_archive_give_identical_tensors(tiny_folder, tiny_archive, tmp_path):
    from_folder = load_source(tiny_folder, tmp_path / "a")
    from_archive = load_source(tiny_archive, tmp_path / "b")
    for split in ("train", "test"):
        assert torch.equal(from_folder[split][0], from_archive[split][0])
        assert torch.equal(from_folder[split][1], from_archive[split][1])


def test_second_load_comes_from_the_cache_keyed_by_content(tiny_archive, tmp_path, monkeypatch):
    first = load_source(tiny_archive, tmp_path)
    assert list(tmp_path.glob("cifar10-*.pt"))

    def no_decoding(source):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(sources_module, "_read_image_folder", no_decoding)
    second = load_source(tiny_archive, tmp_path)
    assert torch.equal(first["train"][0], second["train"][0])


def test_runs_are_keyed_by_decoded_content_not_by_the_bytes_of_the_copy(
    tiny_folder, tiny_archive, tmp_path
):
    """A folder and an archive of the same images share a fingerprint; one changed pixel or
    label does not; the official release's is known without a download."""
    archive = source_fingerprint(tiny_archive, tmp_path / "a")
    assert archive == source_fingerprint(tiny_folder, tmp_path / "b")
    assert sources_module.bytes_fingerprint(tiny_archive) != \
        sources_module.bytes_fingerprint(tiny_folder)
    data = load_source(tiny_archive, tmp_path / "a")
    pixel = {**data, "train": (data["train"][0].clone(), data["train"][1])}
    pixel["train"][0][0, 0, 0, 0] ^= 1
    label = {**data, "test": (data["test"][0], data["test"][1].roll(1))}
    assert len({archive, content_fingerprint(pixel), content_fingerprint(label)}) == 3
    assert source_fingerprint("official", tmp_path / "none") == OFFICIAL_CONTENT
    assert not (tmp_path / "none").exists()  # nothing downloaded or decoded


def test_the_official_release_is_ordered_by_label_keeping_its_order_within_a_label():
    images = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1)
    ordered, labels = sources_module._by_label(images, torch.tensor([2, 0, 2, 1, 0, 1]))
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ordered.flatten().tolist() == [1, 4, 3, 5, 0, 2]


EXACT_COPY = Path(__file__).parents[1] / ".." / "shared" / "data" / "cifar10-png.tar.gz"


@pytest.mark.skipif(not EXACT_COPY.exists(), reason="the exact CIFAR-10 copy is not at hand")
def test_the_exact_png_copy_has_the_official_release_content():
    """Its decoded arrays in the official index order match ../shared/data/README.md's sha256
    (checked once by hand); so its content fingerprint is the official release's."""
    assert source_fingerprint(EXACT_COPY, ".cache/data") == OFFICIAL_CONTENT


def test_missing_source_names_the_fix(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist.*data.source="):
        load_source(tmp_path / "nowhere.tar.gz", tmp_path)


def test_wrong_layout_is_explained(tiny_folder, tmp_path):
    archive = tmp_path / "train-only.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_folder / "train", arcname="train")
    with pytest.raises(DataSourceError, match="ImageFolder layout"):
        load_source(archive, tmp_path)


def test_corrupt_archive_is_explained(tiny_archive, tmp_path):
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(tiny_archive.read_bytes()[: tiny_archive.stat().st_size // 2])
    with pytest.raises(DataSourceError, match="corrupt"):
        load_source(truncated, tmp_path)
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(gzip.compress(b"not a tar file at all" * 100))
    with pytest.raises(DataSourceError, match="corrupt"):
        load_source(garbage, tmp_path)


def test_undecodable_image_is_named(tiny_folder, tmp_path):
    folder = tmp_path / "broken"
    (folder / "train" / "a").mkdir(parents=True)
    (folder / "test" / "a").mkdir(parents=True)
    (folder / "train" / "a" / "0.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    good_image = (tiny_folder / "test" / "class0" / "0000.jpg").read_bytes()
    (folder / "test" / "a" / "0.jpg").write_bytes(good_image)
    with pytest.raises(DataSourceError, match="0.jpg"):
        load_source(write_tar_gz(folder, tmp_path / "broken.tar.gz"), tmp_path)


def make_datamodule(source, tmp_path, **kwargs) -> CIFAR10DataModule:
    datamodule = CIFAR10DataModule(source, cache_dir=tmp_path, batch_size=16, **kwargs)
    datamodule.setup()
    return datamodule


def test_training_batches_are_whole_uint8_batches_then_normalized(tiny_archive, tmp_path):
    datamodule = make_datamodule(tiny_archive, tmp_path, augment=False)
    loader = datamodule.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) == (10 * TRAIN_PER_CLASS) // 16
    images, labels = batches[0]
    assert images.dtype == torch.uint8 and images.shape == (16, 3, 32, 32)
    assert labels.shape == (16,)
    normalized, _ = datamodule.on_after_batch_transfer(batches[0], 0)
    assert normalized.dtype == torch.float32
    everything = datamodule.splits["train"].tensors[0]
    centred, _ = datamodule.on_after_batch_transfer((everything, None), 0)
    assert centred.mean(dim=0).abs().max() < 1e-5  # the per-pixel mean is subtracted


def test_each_epoch_is_a_new_shuffle_and_ranks_get_disjoint_shares(tiny_archive, tmp_path):
    from resnet_repro.data.cifar10 import RandomBatches

    sampler = RandomBatches(100, 10, seed=0)
    first = torch.cat(list(sampler))
    assert len(sampler) == 10 and torch.equal(first.sort().values, torch.arange(100))
    sampler.set_epoch(1)
    assert not torch.equal(first, torch.cat(list(sampler)))
    shares = [set(torch.cat(list(RandomBatches(100, 10, 0, rank, 2))).tolist()) for rank in (0, 1)]
    assert not shares[0] & shares[1] and len(shares[0]) == 50


def test_under_ddp_each_process_draws_its_share_of_the_total_batch(tiny_archive, tmp_path):
    datamodule = make_datamodule(tiny_archive, tmp_path)
    datamodule.trainer = type("Trainer", (), {"global_rank": 1, "world_size": 2})()
    images, _ = next(iter(datamodule.train_dataloader()))
    assert len(images) == datamodule.batch_size // 2


def test_val_split_holds_out_part_of_the_training_set(tiny_archive, tmp_path, monkeypatch):
    monkeypatch.setattr("resnet_repro.data.cifar10.VAL_SIZE", 50)
    datamodule = make_datamodule(tiny_archive, tmp_path, val_split=True)
    assert len(datamodule.splits["val"]) == 50
    assert len(datamodule.splits["train"]) == 10 * TRAIN_PER_CLASS - 50
    assert datamodule.eval_names == ["val", "test"]
    assert len(datamodule.val_dataloader()) == 2


def test_official_release_that_cannot_be_downloaded_points_to_a_local_copy(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataSourceError, match="could not download.*data.source=<path"):
        load_source("official", tmp_path)


def test_only_training_batches_are_augmented(tiny_archive, tmp_path):
    torch.manual_seed(0)
    datamodule = make_datamodule(tiny_archive, tmp_path)
    images = datamodule.splits["train"].tensors[0][:64]
    evaluation = datamodule.prepare(images, training=False)
    training = datamodule.prepare(images, training=True)
    assert training.shape == evaluation.shape == (64, 3, 32, 32)
    assert not torch.equal(training, evaluation)
    unaugmented = make_datamodule(tiny_archive, tmp_path, augment=False)
    assert torch.equal(unaugmented.prepare(images, training=True), evaluation)


def test_runs_keyed_by_the_bytes_of_their_copy_move_to_their_content_keys(
    smoke_overrides, tiny_archive, monkeypatch
):
    """The migration of the recorded runs: a run and a run started from its weights, trained
    under the old keys, are found done under the new ones, and nothing is retrained."""
    from resnet_repro.config import compose_train
    from resnet_repro.data.sources import bytes_fingerprint
    from resnet_repro.migrations import rekey_data
    from resnet_repro.runs import RunFolder, group_key
    from resnet_repro.training.launch import train

    configs = [compose_train([*smoke_overrides, "model.shortcut=null",
                              "trainer.enable_progress_bar=false", *extra])
               for extra in ([], ["model.depth=14", "init={from_depth:8}"])]
    with monkeypatch.context() as old_keys:
        old_keys.setattr(CIFAR10DataModule, "fingerprint",
                         property(lambda self: bytes_fingerprint(self.source)))
        old = [train(cfg) for cfg in configs]
    runs = old[0].directory.parent
    running = runs / "0123456789abcdef"  # a run still in progress: its process writes by path
    running.mkdir()
    (running / "run.json").write_text(json.dumps(
        {"status": "running", "dataset": {"fingerprint": bytes_fingerprint(tiny_archive)}}))
    moves = rekey_data(runs, {bytes_fingerprint(tiny_archive): "content-hash-of-the-copy"})
    assert running.exists() and "0123456789abcdef" not in moves
    assert set(moves) == {record.directory.name for record in old}
    monkeypatch.setattr(CIFAR10DataModule, "fingerprint",
                        property(lambda self: "content-hash-of-the-copy"))
    again = [train(cfg) for cfg in configs]  # found done: skipped, not retrained
    assert [record.data["attempts"] for record in again] == \
        [record.data["attempts"] for record in old]
    assert [record.directory.name for record in again] == [moves[r.directory.name] for r in old]
    moved = RunFolder(again[1].directory).read_record()
    assert moved["dataset"]["fingerprint"] == "content-hash-of-the-copy"
    assert moved["init"]["from_run"] == again[0].directory.name
    assert moved["group"] == group_key(configs[1], "content-hash-of-the-copy") != \
        old[1].data["group"]
    assert rekey_data(runs, {bytes_fingerprint(tiny_archive): "content-hash-of-the-copy"}) == {}
