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

#: Table 6, test error (%) of the ResNets by depth; for 110 the best of 5 runs (6.61 +- 0.16).
TABLE6_TEST_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
