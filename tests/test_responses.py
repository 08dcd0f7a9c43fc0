import json

import pandas as pd
import torch

from resnet_repro.analysis.fig7 import (
    DIGITS,
    layer_response_std,
    plot_layer_responses,
    response_layers,
    responses,
)
from resnet_repro.models import CifarResNet
from resnet_repro.runs import RunFolder, read_runs


def test_one_response_per_3x3_layer_in_order():
    for shortcut in (None, "A", "B"):
        net = CifarResNet(20, shortcut=shortcut)
        layers = response_layers(net)
        assert len(layers) == 19  # 20 weighted layers less the fully connected one
        assert layers[0] is net.bn1 and layers[-1] is net.stage3[-1].bn2


def test_response_std_is_the_std_of_the_bn_output_before_relu_and_addition():
    torch.manual_seed(0)
    net = CifarResNet(8, shortcut="A").eval()
    images = torch.randn(40, 3, 32, 32)
    stds = layer_response_std(net, images, batch_size=16)
    first = net.bn1(net.conv1(images))
    block = net.stage1[0]
    after_first_relu = torch.relu(first)
    before_addition = block.residual(after_first_relu)
    assert abs(stds[0] - first.std(unbiased=False).item()) < 1e-4
    assert abs(stds[2] - before_addition.std(unbiased=False).item()) < 1e-4


def test_responses_come_from_the_runs_final_weights(tmp_path):
    net = CifarResNet(8, shortcut=None)
    torch.nn.init.constant_(net.bn1.weight, 3.0)  # a recognisable trained state
    run = tmp_path / "run"
    run.mkdir()
    torch.save(net.state_dict(), run / "model.pt")
    (run / "config.yaml").write_text(
        "model:\n  _target_: resnet_repro.models.CifarResNet\n  depth: 8\n  shortcut: null\n")
    (run / "run.json").write_text(json.dumps(
        {"status": "done", "net": "plain-8", "seed": 0, "model": {"depth": 8, "shortcut": None}}))
    assert torch.equal(RunFolder(run).load_net().bn1.weight, torch.full((16,), 3.0))
    table = responses(read_runs([run, tmp_path / "never-run"]), torch.randn(20, 3, 32, 32))
    assert list(table["layer"]) == list(range(1, 8)) and (table["net"] == "plain-8").all()
    assert table.loc[0, "std"] > 2.5  # BN scale 3 on normalized output
    # kept to DIGITS decimals, so a redraw on a CPU that sums in another order writes the same
    assert (table["std"] == table["std"].round(DIGITS)).all()


def test_figure7_has_a_line_per_net_in_both_panels():
    rows = [(net, depth, shortcut, 0, layer, 1.0 / layer)
            for net, depth, shortcut in (("plain-20", 20, "plain"), ("resnet-20", 20, "A"))
            for layer in range(1, 20)]
    table = pd.DataFrame(rows, columns=["net", "depth", "shortcut", "seed", "layer", "std"])
    figure = plot_layer_responses(table.assign(series=table["net"]), "fig7")
    for axis in figure.axes:
        assert sorted(line.get_label() for line in axis.get_lines()) == ["plain-20", "resnet-20"]
    sorted_values = figure.axes[1].get_lines()[0].get_ydata()
    assert list(sorted_values) == sorted(sorted_values, reverse=True)
