"""Table 3: ResNet-34 with shortcut options A, B and C against plain-34 on ImageNet (and the
bottleneck ResNet-50/101/152 with option B), final 10-crop top-1 and top-5 validation error
beside the paper's. No figure.

The grid is ``conf/experiment/table3.yaml``; this is the rest of the recipe.
"""

from __future__ import annotations

import functools
from pathlib import Path

from resnet_repro.analysis.context import Context
from resnet_repro.analysis.paper import TABLE3_TOP1_TOP5
from resnet_repro.analysis.report import write_results
from resnet_repro.analysis.tables import Table, imagenet_markdown, imagenet_table

TABLE3 = Table("table3", "Table 3: ImageNet error (%), 10-crop testing, validation",
               functools.partial(imagenet_table, paper=TABLE3_TOP1_TOP5), imagenet_markdown)


def run(context: Context) -> dict[str, Path]:
    return write_results(context, tables=[TABLE3])
