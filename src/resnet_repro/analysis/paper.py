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
#: Table 6's ResNet-110 over its 5 runs: (mean, std, runs), the paper's only seed spread.
TABLE6_RESNET110_RUNS = (6.61, 0.16, 5)

#: Table 2, top-1 error (%) on ImageNet validation, 10-crop testing (option A for the ResNets).
TABLE2_TOP1 = {"plain-18": 27.94, "plain-34": 28.54, "resnet-18-A": 27.88, "resnet-34-A": 25.03}

#: Table 3, (top-1, top-5) error (%) on ImageNet validation, 10-crop testing.
TABLE3_TOP1_TOP5 = {
    "plain-34": (28.54, 10.02),
    "resnet-34-A": (25.03, 7.76),
    "resnet-34-B": (24.52, 7.46),
    "resnet-34-C": (24.19, 7.40),
    "resnet-50-B": (22.85, 6.71),
    "resnet-101-B": (21.75, 6.05),
    "resnet-152-B": (21.43, 5.71),
}
