"""Print each of the paper's CIFAR-10 claims with PASS, FAIL, INCONCLUSIVE or NOT RUN, the
seeds and numbers behind it, for every profile that results/ holds (or one: --profile cpu)."""

import argparse
import sys
from pathlib import Path

from resnet_repro.analysis.claims import __doc__ as RULE
from resnet_repro.analysis.claims import load_summaries, verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--profile", help="only this profile (default: every one found)")
    args = parser.parse_args(argv)
    profiles = [args.profile] if args.profile else sorted(
        {path.parent.name for path in args.results.glob("*/*/summary.csv")})
    print(RULE.strip(), end="\n\n")
    for profile in profiles:
        verdicts, floors = verify(load_summaries(args.results, profile))
        print(f"== profile {profile}")
        print("\n".join(f"   {floor}" for floor in floors))
        for verdict in verdicts:
            print(verdict)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
