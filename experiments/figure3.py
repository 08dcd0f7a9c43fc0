"""Figure 3's comparison as a table: write results/fig3/ (analysis/figure3.py).

    python experiments/figure3.py
"""

import sys
from pathlib import Path

from resnet_repro.analysis import figure3


def main() -> int:
    written = figure3.run(Path("results/fig3"), "make reproduce-fig3")
    print(figure3.table().to_string(index=False))
    print("wrote", ", ".join(str(path) for path in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
