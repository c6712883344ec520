"""Reward throughput: completions per second for every registered reward on 10,000 completions.

    python bench/reward_throughput.py [--n 10000] [--repeats 3] [--seed 0] [--generations 8] [--shipped-n 50]

The completions follow the r1 template (``<think>...</think>\\n<answer>a, b</answer>``) with
emotion lists drawn from the MER wheel vocabulary, everyday emotion words, inflections and
out-of-vocabulary words; about 15% are malformed (no answer, unclosed or duplicated tags,
bracketed lists, prose answers, empty answers). Each row carries the gold columns the rewards
read: ``emotions`` (list), ``label`` (one label), ``aus`` (AU numbers); as in GRPO, each
prompt's row comes with 8 completions (``--generations``).

For ``emotion_wheel`` the port of the official MER per-sample code
(tests/rewards/official_wheel.py) runs on the same data in the same process as the baseline;
the script asserts the scores are identical and prints the speed ratio. The main baseline is
the port with the mapping preloaded (the official algorithm at its fastest); the official
code as shipped, which reloads ``wheel_mapping.npz`` three times per wheel on every call, is
timed on the first ``--shipped-n`` completions for context. Every reward is built with its
defaults on each repeat; the best repeat is reported.
Rewards that need a server (``rubric``) or fail on this data are listed as skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import rewards
from rewards.text import completion_text, tag_span
from rewards.wheel import load_wheel_data

REPO = Path(__file__).resolve().parents[1]
NEEDS_SERVER = {"rubric"}
EVERYDAY = [
    "happy", "sad", "angry", "anxious", "hopeful", "worried", "frustrated", "calm", "excited",
    "lonely", "grateful", "nervous", "relieved", "disappointed", "surprised", "scared", "proud",
    "embarrassed", "confused", "content", "annoyed", "bored", "jealous", "guilty", "ashamed",
]
INFLECTED = ["Happiness", "SADNESS", "angered", "worrying", "frustration", "fearful", "excitement"]
OUT_OF_VOCABULARY = ["neutral", "pensive", "conflicted", "meh", "bittersweet", "unclear"]
LABELS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "contempt"]
PROTOTYPES = {"happiness": [6, 12], "sadness": [1, 4, 15], "surprise": [1, 2, 5, 26], "fear": [1, 2, 4, 5, 20, 26],
              "anger": [4, 5, 7, 23], "disgust": [9, 15, 16], "contempt": [12, 14]}
AU_NAMES = {1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
            6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 12: "lip corner puller",
            14: "dimpler", 15: "lip corner depressor", 16: "lower lip depressor", 20: "lip stretcher",
            23: "lip tightener", 26: "jaw drop"}


def _load_official():
    path = REPO / "tests" / "rewards" / "official_wheel.py"
    spec = importlib.util.spec_from_file_location("official_wheel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _emotion_word(rng: random.Random, vocabulary: list[str]) -> str:
    pool = rng.choices([EVERYDAY, vocabulary, INFLECTED, OUT_OF_VOCABULARY], weights=[55, 25, 10, 10])[0]
    return rng.choice(pool)


def _reasoning(rng: random.Random, label: str) -> str:
    aus = rng.sample(PROTOTYPES[label], k=min(2, len(PROTOTYPES[label])))
    cues = " and ".join(f"AU{au} ({AU_NAMES[au]})" for au in aus)
    return (
        f"The speaker's voice drops at the end of the sentence and the words are hesitant. "
        f"The face shows {cues}, which signals {label}. Taken together with the context, "
        f"the overall state is mixed but leans towards {label}."
    )


def _answer_block(rng: random.Random, words: list[str]) -> str:
    roll = rng.random()
    if roll < 0.85:
        return f"<answer>{', '.join(words)}</answer>"
    if roll < 0.88:
        return ""  # no answer
    if roll < 0.91:
        return f"<answer>{', '.join(words)}"  # unclosed (truncated generation)
    if roll < 0.93:
        return f"<answer>{', '.join(words)}</answer>\n<answer>{words[0]}</answer>"  # duplicated
    if roll < 0.96:
        return f"<answer>{words!r}</answer>"  # bracketed list
    if roll < 0.98:
        return f"<answer>I think the person feels {' and '.join(words)}.</answer>"  # prose
    return "<answer></answer>"


def make_rows(n: int, seed: int, generations: int = 8) -> tuple[list[str], dict[str, list]]:
    """``n`` completions and their gold columns, ``generations`` per prompt as in GRPO batches.

    The completions of one prompt share its gold columns (a copy each, as TRL repeats rows);
    their answers are drawn independently.
    """
    rng = random.Random(seed)
    vocabulary = sorted(load_wheel_data().format_mapping)
    completions, columns = [], {"emotions": [], "label": [], "aus": []}
    while len(completions) < n:
        label = rng.choice(LABELS)
        gold = [_emotion_word(rng, vocabulary) for _ in range(rng.randint(1, 4))]
        aus = sorted(rng.sample(PROTOTYPES[label], k=len(PROTOTYPES[label]) - 1))
        for _ in range(min(generations, n - len(completions))):
            predicted = [_emotion_word(rng, vocabulary) for _ in range(rng.randint(1, 5))]
            if rng.random() < 0.4:
                predicted[0] = gold[0]
            think = f"<think>{_reasoning(rng, label)}</think>\n" if rng.random() < 0.97 else "<think>unclosed "
            completions.append(think + _answer_block(rng, predicted))
            columns["emotions"].append(list(gold))
            columns["label"].append(label)
            columns["aus"].append(list(aus))
    return completions, columns


def _best_time(run, repeats: int) -> tuple[float, list]:
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_reward(name: str, completions: list[str], columns: dict, repeats: int) -> tuple:
    """(best seconds, scores, note) of the reward ``name`` built with its defaults."""
    if name in NEEDS_SERVER:
        return None, None, "skipped: needs a judge server"
    try:
        rewards.build(name)
        return (*_best_time(lambda: rewards.build(name)(None, completions, **columns), repeats), "")
    except Exception as problem:  # noqa: BLE001 - other rewards may be in progress; report, go on
        return None, None, f"skipped: {type(problem).__name__}: {str(problem)[:90]}"


def official_emotion_wheel(official, completions: list[str], golds: list) -> list[float]:
    """The official per-sample code on the same answer spans (no span -> empty prediction)."""
    scores = []
    for completion, gold in zip(completions, golds):
        span = tag_span(completion_text(completion), "answer")
        scores.append(official.official_sample_reward(gold, "" if span is None else span))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=8, help="completions per prompt")
    parser.add_argument("--shipped-n", type=int, default=50, help="completions for the as-shipped official code")
    args = parser.parse_args()

    completions, columns = make_rows(args.n, args.seed, args.generations)
    results = {name: bench_reward(name, completions, columns, args.repeats) for name in rewards.available()}
    fast_seconds, fast_scores, note = results.get("emotion_wheel", (None, None, "not registered"))
    if fast_scores is None:
        sys.exit(f"emotion_wheel did not run: {note}")

    official = _load_official()
    golds = columns["emotions"]
    official_seconds = math.inf
    for _ in range(args.repeats):  # alternate with emotion_wheel: the machine's load drifts
        seconds, official_scores = _best_time(lambda: official_emotion_wheel(official, completions, golds), 1)
        official_seconds = min(official_seconds, seconds)
        fast_seconds = min(fast_seconds, bench_reward("emotion_wheel", completions, columns, 1)[0])
    results["emotion_wheel"] = (fast_seconds, fast_scores, "")
    shipped_seconds, shipped_scores = _as_shipped(official, completions[: args.shipped_n], golds)

    rows = [(name, seconds, note, args.n) for name, (seconds, _, note) in results.items()]
    rows.append(("emotion_wheel: official port, mapping preloaded", official_seconds, "baseline", args.n))
    rows.append(("emotion_wheel: official code as shipped", shipped_seconds, "reloads the .npz", args.shipped_n))
    print(f"{args.n} completions ({args.generations} per prompt), best of {args.repeats}, "
          f"Python {sys.version.split()[0]}\n")
    print("| reward | completions/s | µs/completion | note |")
    print("| --- | ---: | ---: | --- |")
    for name, seconds, note, n in rows:
        if seconds is None:
            print(f"| {name} | - | - | {note} |")
        else:
            print(f"| {name} | {n / seconds:,.0f} | {seconds / n * 1e6:,.2f} | {note} |")

    assert fast_scores == official_scores, "emotion_wheel differs from the official per-sample code"
    assert fast_scores[: args.shipped_n] == shipped_scores, "emotion_wheel differs from the official code as shipped"
    print(f"\nemotion_wheel: {official_seconds / fast_seconds:,.0f}x the throughput of the official code "
          f"(mapping preloaded), {shipped_seconds / args.shipped_n / (fast_seconds / args.n):,.0f}x the official "
          f"code as shipped; all {args.n} scores identical (mean {sum(fast_scores) / args.n:.4f}).")


def _as_shipped(official, completions: list[str], golds: list) -> tuple[float, list[float]]:
    """Time the official code with its per-call loading of ``wheel_mapping.npz``."""
    with tempfile.TemporaryDirectory() as folder:
        official.OUTSIDE_WHEEL_MAPPING = f"{folder}/wheel_mapping.npz"
        official.write_npz(official.OUTSIDE_WHEEL_MAPPING)
        try:
            return _best_time(lambda: official_emotion_wheel(official, completions, golds), 1)
        finally:
            official.OUTSIDE_WHEEL_MAPPING = None


if __name__ == "__main__":
    main()
