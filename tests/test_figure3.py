"""Figure 3's comparison: VGG-19 (torchvision's) beside plain-34 and ResNet-34, counted."""

import torch
from hydra.utils import instantiate

from resnet_repro.analysis import figure3
from resnet_repro.config import compose_train


def test_the_three_nets_counted_as_the_paper_counts_them(tmp_path):
    table = figure3.table().set_index("net")
    assert table.loc["vgg-19", "weighted_layers"] == 19
    assert table.loc["plain-34", "weighted_layers"] == table.loc["resnet-34-B", "weighted_layers"]
    assert table.loc["plain-34", "weighted_layers"] == 34
    # the paper's numbers to its one decimal, and "only 18 % of VGG-19"
    assert (abs(table["multiply_adds_billions"] - table["paper_billions"]) < 0.07).all()
    assert 0.18 <= table.loc["resnet-34-A", "share_of_vgg19"] < 0.19
    assert table.loc["resnet-34-A", "params_millions"] == table.loc["plain-34", "params_millions"]
    assert 143 < table.loc["vgg-19", "params_millions"] < 144  # torchvision's VGG-19
    written = figure3.run(tmp_path, "make reproduce-fig3")
    assert "| vgg-19 | 19 | 143.7 M | 19.63 billion | 19.6 billion | 100% |" in \
        written["readme"].read_text()


def test_vgg19_composes_and_trains_like_the_other_imagenet_nets():
    cfg = compose_train(["model=vgg19", "data=imagenet", "profile=smoke"])
    net = instantiate(cfg.model)
    module = instantiate(cfg.module, net=net)
    assert net.name == "vgg-19" and sum(p.numel() for p in net.parameters()) > 143e6
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([3, 999])
    loss = torch.nn.functional.cross_entropy(module(images), labels)
    loss.backward()
    assert net.features[0].weight.grad is not None
