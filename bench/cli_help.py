"""Time ``affect-rl [COMMAND] --help``: a fresh interpreter per run, as a user's shell starts it.

    python bench/cli_help.py [--repeat 5] [--command affect-rl]

Prints the median and the worst wall time of each ``--help`` over ``--repeat`` runs. The goal is
under 1.5 s each: building the parser and printing help must not import torch, TRL or the data
layer (tests/test_cli.py checks the imports; this measures the time).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time

SUBCOMMANDS = ["", "sft", "grpo", "pipeline", "demo", "eval", "export", "rewards", "score"]
GOAL_S = 1.5


def time_help(command: list[str], subcommand: str, repeat: int) -> list[float]:
    """Wall times of ``command [subcommand] --help``, each in a fresh process."""
    argv = [*command, *([subcommand] if subcommand else []), "--help"]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per subcommand (default 5)")
    parser.add_argument("--command", default=f"{shlex.quote(sys.executable)} -m affect_rl.cli",
                        help="how to start affect-rl (default: this Python with -m affect_rl.cli)")
    args = parser.parse_args()
    command = shlex.split(args.command)
    slowest = 0.0
    print(f"{'command':<28} {'median s':>9} {'max s':>7}")
    for subcommand in SUBCOMMANDS:
        times = time_help(command, subcommand, args.repeat)
        slowest = max(slowest, max(times))
        label = f"affect-rl {subcommand} --help".replace("  ", " ")
        print(f"{label:<28} {statistics.median(times):>9.2f} {max(times):>7.2f}")
    print(f"slowest {slowest:.2f} s (goal: under {GOAL_S} s)")
    return 0 if slowest < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
