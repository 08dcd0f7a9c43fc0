"""Where each figure and table is made: one recipe module per experiment, with ``run(context)``
writing ``results/<experiment>/<profile>/``. The experiment's grid of runs is
``conf/experiment/<experiment>.yaml``; everything else (what is measured, drawn and said) is
in its module. Figure 3's comparison trains nothing: ``analysis.figure3``.
"""

from __future__ import annotations

from types import ModuleType

from resnet_repro.analysis import (
    fig1,
    fig4,
    fig6,
    fig7,
    gradients,
    identity,
    landscape,
    lesion,
    precision,
    table3,
    table6,
)

#: experiment name -> its recipe module.
RECIPES: dict[str, ModuleType] = {
    "fig1": fig1,            # Figure 1: the degradation problem, plain-20 against plain-56
    "fig4": fig4,            # Figure 4 and Table 2: ImageNet, 18/34 layers
    "fig6": fig6,            # Figure 6: plain nets, ResNets, the deepest ResNets
    "fig7": fig7,            # Figure 7: standard deviations of layer responses
    "table3": table3,        # Table 3: ImageNet, shortcut options and bottleneck nets
    "table6": table6,        # Table 6: CIFAR-10 ResNets by depth over seeds
    "gradients": gradients,  # why: gradient norms through the depth
    "identity": identity,    # why: the identity construction
    "lesion": lesion,        # why: deleting blocks of trained nets (Veit et al.)
    "landscape": landscape,  # why: loss landscapes (Li et al.)
    "precision": precision,  # bf16 autocast against fp32, for CPU training
}


def recipe(experiment: str | None) -> ModuleType:
    """The recipe of ``experiment``; a sweep run without one gets Figure 1's error curves."""
    if experiment is None:
        return fig1
    if experiment not in RECIPES:
        raise KeyError(f"no recipe for experiment {experiment!r}; recipes: "
                       f"{', '.join(RECIPES)} (analysis/recipes.py)")
    return RECIPES[experiment]
