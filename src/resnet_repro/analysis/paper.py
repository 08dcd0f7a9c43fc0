"""The paper's numbers to compare with (../shared/PAPER.md)."""

#: Figure 6 read off at 64k iterations (about +-0.2): net -> (training error %, test error %).
FIGURE6_FINAL = {
    "plain-20": (1.3, 9.6),
    "plain-32": (1.4, 10.1),
    "plain-44": (2.6, 11.3),
    "plain-56": (5.6, 13.3),
    "resnet-20": (0.6, 8.8),
    "resnet-56": (0.1, 7.0),
}
PAPER_ITERATIONS = 64000
