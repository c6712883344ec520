"""Custom rewards named module:function or path/file.py:function get the registry's treatment."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import rewards
from rewards.custom import load_custom
from rewards.entries import build_entries, parse_entries
from rewards.errors import ConfigError, RangeError
from rewards.routing import AsyncRouted

REPO = Path(__file__).resolve().parents[2]
SOURCE = '''
from typing import Annotated, Literal

from rewards.base import Between, Reward


def brevity(prompts, completions, *, max_words: Annotated[int, Between(1, 100)] = 3,
            mode: Literal["soft", "hard"] = "soft", **kwargs):
    """1 for answers of at most max_words words, less (soft) or 0 (hard) beyond."""
    words = [len(str(c).split()) for c in completions]
    if mode == "hard":
        return [float(n <= max_words) for n in words]
    return [min(1.0, max_words / max(n, 1)) for n in words]


brevity.value_range = (0.0, 1.0)


def too_big(prompts, completions, **kwargs):
    return [2.0 for _ in completions]


too_big.value_range = (0.0, 1.0)


def unbounded(prompts, completions, label=None, **kwargs):
    return [float(len(completions[i]) + len(label[i])) for i in range(len(completions))]


def no_kwargs(prompts, completions):
    return [0.0 for _ in completions]


def bad_range(prompts, completions, **kwargs):
    return [0.0 for _ in completions]


bad_range.value_range = (1.0, 0.0)


async def slow(prompts, completions, **kwargs):
    return [0.5 for _ in completions]


class Vowels:
    """Share of vowels, times scale."""

    value_range = (0.0, 10.0)

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def __call__(self, prompts, completions, **kwargs):
        return [self.scale * sum(ch in "aeiou" for ch in c) / max(len(c), 1) for c in completions]


class Shout(Reward):
    name, summary, value_range, source = "shout", "1 if the completion is upper case", (0.0, 1.0), "tests"

    def __init__(self, *, weight_caps: Annotated[float, Between(0, 1)] = 1.0):
        self.weight_caps = weight_caps

    def __call__(self, prompts, completions, **columns):
        return [self.weight_caps * float(c.isupper()) for c in completions]


NOT_CALLABLE = 3
'''


@pytest.fixture()
def custom_file(tmp_path, monkeypatch):
    """my_rewards.py in a fresh working directory (relative references are read from there)."""
    (tmp_path / "my_rewards.py").write_text(SOURCE)
    monkeypatch.chdir(tmp_path)
    yield "my_rewards.py"
    load_custom.cache_clear()


def test_a_function_from_a_file_with_checked_options(custom_file):
    reward = rewards.build("my_rewards.py:brevity", max_words=2)
    assert reward.__name__ == "brevity" and reward.options() == {"max_words": 2, "mode": "soft"}
    assert reward(None, ["a b", "a b c d"]) == [1.0, 0.5]
    assert rewards.build("my_rewards.py:brevity", mode="hard")(None, ["a b c d"]) == [0.0]
    with pytest.raises(ConfigError, match=r"Reward 'my_rewards.py:brevity': option max_words must be an integer in \[1, 100\]; got 0\."):
        rewards.build("my_rewards.py:brevity", max_words=0)
    with pytest.raises(ConfigError, match=r"option mode must be one of 'soft', 'hard'; got 'medium'"):
        rewards.build("my_rewards.py:brevity", mode="medium")
    with pytest.raises(ConfigError, match=r"has no option 'max_word'. Did you mean 'max_words'\?"):
        rewards.build("my_rewards.py:brevity", max_word=2)


def test_a_module_reference_a_class_and_a_reward_subclass(custom_file, monkeypatch):
    monkeypatch.syspath_prepend(os.getcwd())
    vowels = rewards.build("my_rewards:Vowels", scale=2.0)
    assert vowels.__name__ == "Vowels" and vowels(None, ["aa", "xx"]) == [2.0, 0.0]
    with pytest.raises(ConfigError, match="option scale must be a number; got 'big'"):
        rewards.build("my_rewards:Vowels", scale="big")
    shout = rewards.build("my_rewards.py:Shout", weight_caps=0.5)
    assert shout.__name__ == "shout" and shout(None, ["HEY", "hey"]) == [0.5, 0.0]


def test_the_declared_range_is_checked_at_run_time(custom_file):
    (reward,) = build_entries(parse_entries([{"name": "my_rewards.py:too_big"}], "r.yaml"))
    with pytest.raises(RangeError, match=r"Reward 'too_big' returned 2.0 for row 0 of the batch, outside its declared range \[0, 1\]"):
        reward(None, ["x"])
    (free,) = build_entries(parse_entries([{"name": "my_rewards.py:unbounded"}], "r.yaml"))
    assert free.value_range == (float("-inf"), float("inf"))
    assert free(None, ["ab"], label=["xyz"]) == [5.0]  # dataset columns arrive as keyword arguments


def test_async_functions_stay_async(custom_file):
    (reward,) = build_entries(parse_entries([{"name": "my_rewards.py:slow", "weight": 0.5}], "r.yaml"))
    assert isinstance(reward, AsyncRouted)
    import asyncio

    assert asyncio.run(reward(None, ["a", "b"])) == [0.5, 0.5]


@pytest.mark.parametrize(
    "reference, message",
    [
        ("nothing.py:fn", "no file .*nothing.py \\(a relative path is read from the working directory"),
        ("my_rewards.py:missing", "my_rewards.py defines no 'missing'; its callables: .*brevity"),
        ("my_rewards.py:NOT_CALLABLE", "is a int, not a function or a class"),
        ("my_rewards.py:no_kwargs", "must accept \\*\\*kwargs: TRL passes every dataset column"),
        ("my_rewards.py:bad_range", "value_range must be \\(low, high\\) with low < high; got \\(1.0, 0.0\\)"),
        ("no_such_module_xyz:fn", "no module 'no_such_module_xyz' on the Python path"),
        ("my_rewards.py:", "write module:function, module:Class or path/to/file.py:function"),
    ],
)
def test_reference_errors_say_what_is_wrong_and_how_to_fix_it(custom_file, reference, message):
    with pytest.raises(ConfigError, match=message):
        rewards.build(reference)


def test_a_file_that_fails_to_run(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("import not_a_real_package_xyz\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"running .*broken.py failed: ModuleNotFoundError"):
        rewards.build("broken.py:fn")


def test_custom_rewards_are_listed_with_their_options_and_range(custom_file):
    from affect_rl.scoring import describe_rewards

    table = describe_rewards(["my_rewards.py:brevity"])
    assert "my_rewards.py:brevity range [0, 1]   source: my_rewards.py:brevity" in table
    assert "1 for answers of at most max_words words" in table
    block = table[table.index("my_rewards.py:brevity range") :].splitlines()
    options = {line.split()[0]: line.split(maxsplit=2)[1:] for line in block if line.startswith("      ")}
    assert options == {"max_words:": ["3", "an integer in [1, 100]"], "mode:": ["soft", "one of 'soft', 'hard'"]}


def test_a_file_reward_unpickles_in_a_fresh_process(custom_file, tmp_path):
    (reward,) = build_entries(parse_entries([{"name": "my_rewards.py:brevity", "max_words": 1}], "r.yaml"))
    pickled = tmp_path / "reward.pkl"
    pickled.write_bytes(pickle.dumps(reward))
    code = f"import pickle; r = pickle.load(open({str(pickled)!r}, 'rb')); print(r.__name__, r(None, ['a b']))"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "brevity [0.5]"


@pytest.mark.parametrize("shadow", ["rewards.py", "rewards/__init__.py"])
def test_the_cli_refuses_a_rewards_module_that_shadows_the_package(tmp_path, shadow):
    path = tmp_path / shadow
    path.parent.mkdir(exist_ok=True)
    path.write_text("def my_reward(prompts, completions, **kwargs):\n    return [0.0] * len(completions)\n")
    done = subprocess.run([sys.executable, "-m", "affect_rl.cli", "rewards"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{path} shadows affect-rl's `rewards` package; rename it" in done.stderr
