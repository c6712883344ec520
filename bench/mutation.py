"""Mutation check of the test suite with mutmut (PyPI): how many small code changes the tests catch.

mutmut rewrites one function at a time (a flipped comparison, a changed constant, a dropped
argument...), runs the tests that cover it, and counts the mutant as killed when a test fails.
The kill rate says how much of the code's behaviour the tests pin down; each survivor is a change
no test notices.

    pip install mutmut==3.8.1                     # not in the dev extra: it pulls in textual (a TUI)
    make mutation                                 # stats.py + two reward modules (~10 min on 2 cores)
    python bench/mutation.py --target rewards/format.py=tests/rewards/test_format.py

It works on a copy of the repository in a temporary folder (mutmut writes a ``mutants/`` tree
and a ``setup.cfg``), so the checkout is never touched. Prints the counts, the kill rate and the
surviving mutants, and writes them to ``--output`` (JSON) when given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = {
    "affect_rl/stats.py": ["tests/test_stats.py"],
    "rewards/length.py": ["tests/rewards/test_length.py"],
    "rewards/calibration.py": ["tests/rewards/test_calibration.py"],
}
COPIED = ("affect_rl", "rewards", "tests", "recipes", "pyproject.toml")


def parse_targets(values: list[str] | None) -> dict[str, list[str]]:
    """``["a.py=tests/t.py,tests/u.py"]`` -> ``{"a.py": ["tests/t.py", "tests/u.py"]}``."""
    if not values:
        return DEFAULT_TARGETS
    return {module: tests.split(",") for module, _, tests in (value.partition("=") for value in values)}


def setup_cfg(targets: dict[str, list[str]]) -> str:
    tests = sorted({test for files in targets.values() for test in files})
    lines = ["[mutmut]", "source_paths=", "    affect_rl", "    rewards", "only_mutate="]
    lines += [f"    {module}" for module in targets]
    lines += ["pytest_add_cli_args_test_selection="] + [f"    {test}" for test in tests]
    lines += ["pytest_add_cli_args=", "    -p", "    no:randomly", "    -q", "    -m", "    not slow"]
    return "\n".join(lines) + "\n"


def run(targets: dict[str, list[str]], max_children: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="affect-rl-mutation-") as work:
        work_dir = Path(work)
        for name in COPIED:
            source = ROOT / name
            copy = shutil.copytree if source.is_dir() else shutil.copy2
            copy(source, work_dir / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                           if source.is_dir() else {}))
        (work_dir / "setup.cfg").write_text(setup_cfg(targets))
        env = {**os.environ, "PYTHONPATH": "", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
        mutmut = [sys.executable, "-m", "mutmut"]
        subprocess.run([*mutmut, "run", "--max-children", str(max_children)], cwd=work_dir, env=env, check=True)
        subprocess.run([*mutmut, "export-cicd-stats"], cwd=work_dir, env=env, check=True)
        stats = json.loads((work_dir / "mutants" / "mutmut-cicd-stats.json").read_text())
        listing = subprocess.run([*mutmut, "results"], cwd=work_dir, env=env, check=True, capture_output=True,
                                 text=True).stdout
    stats["survivors"] = [line.strip() for line in listing.splitlines() if line.strip().endswith("survived")]
    return stats


def kill_rate(stats: dict) -> float:
    """Killed / (killed + survived): mutants no test ran (no coverage) count as survivors."""
    caught = stats.get("killed", 0) + stats.get("timeout", 0)
    missed = stats.get("survived", 0) + stats.get("no_tests", 0)
    return caught / (caught + missed) if caught + missed else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", metavar="MODULE=TEST[,TEST]",
                        help="a module to mutate and the tests that cover it (repeat; default: stats + 2 rewards)")
    parser.add_argument("--max-children", type=int, default=1, help="mutants tested in parallel (default 1)")
    parser.add_argument("--output", help="write the counts and survivors here as JSON")
    args = parser.parse_args()
    stats = run(parse_targets(args.target), args.max_children)
    stats["kill_rate"] = kill_rate(stats)
    print(json.dumps({k: v for k, v in stats.items() if k != "survivors"}, indent=1))
    print("survivors:\n  " + "\n  ".join(stats["survivors"]))
    print(f"kill rate: {stats['kill_rate']:.1%}")
    if args.output:
        Path(args.output).write_text(json.dumps(stats, indent=1) + "\n")


if __name__ == "__main__":
    main()
