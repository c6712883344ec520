"""The built-in demo sets: size, schema, labels that the rewards can score, and no near-duplicates.

Everything is checked from the shipped files themselves (plus the emotion-wheel JSON and the AU
table they are labelled against), so a hand edit that breaks a contract fails here.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from importlib.resources import files

import pytest
import yaml

DEMO = files("affect_rl") / "data" / "demo"
WHEEL_JSON = files("rewards") / "data" / "emotion_wheel" / "wheel_mapping.json"
AU_YAML = files("rewards") / "data" / "action_units.yaml"

ORIGINAL_EMOTION_ROWS = 463  # emo-0001..emo-0463, the train/test set before the validation split was added
FACIAL_LABELS = {"happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt", "neutral"}


def _load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DEMO / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def emotion_rows():
    return _load("emotion.jsonl")


@pytest.fixture(scope="module")
def facial_rows():
    return _load("facial.jsonl")


@pytest.fixture(scope="module")
def empathy_rows():
    return _load("empathy.jsonl")


@pytest.fixture(scope="module")
def wheel_level1():
    """word -> tuple of its level-1 label in wheels 1..5 (None where a wheel drops it).

    Follows PROVENANCE.md: word -> format_mapping bases -> raw_mapping items, sorted -> first
    item that is a key of wheel_map_whole[wheelK]["level1"].
    """
    data = json.loads(WHEEL_JSON.read_text(encoding="utf-8"))
    fmt, raw, wheels = data["format_mapping"], data["raw_mapping"], data["wheel_map_whole"]

    def label(word: str, k: int) -> str | None:
        level1 = wheels[f"wheel{k}"]["level1"]
        items = sorted({c for base in fmt.get(word, []) for c in raw.get(base, [])})
        return next((level1[c] for c in items if c in level1), None)

    return lambda word: tuple(label(word, k) for k in range(1, 6))


@pytest.fixture(scope="module")
def au_table():
    table = yaml.safe_load(AU_YAML.read_text(encoding="utf-8"))
    return {int(k) for k in table["au_names"]}, {e: set(v) for e, v in table["emfacs_prototypes"].items()}


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s])


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _max_jaccard(texts: list[str]) -> tuple[float, str, str]:
    sh = [_shingles(t) for t in texts]
    best = (0.0, "", "")
    for i, j in itertools.combinations(range(len(texts)), 2):
        jac = len(sh[i] & sh[j]) / len(sh[i] | sh[j])
        if jac > best[0]:
            best = (jac, texts[i], texts[j])
    return best


def _check_ids_and_splits(rows: list[dict], prefix: str, splits: set[str] = frozenset({"train", "test"})) -> Counter:
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(rf"{prefix}-\d{{4}}", i) for i in ids)
    assert {r["split"] for r in rows} == splits
    return Counter(r["split"] for r in rows)


# --------------------------------------------------------------------------- emotion


def test_emotion_size_schema_and_split(emotion_rows):
    assert len(emotion_rows) >= 760
    for r in emotion_rows:
        assert set(r) == {"id", "text", "emotions", "rationale", "split"}, r["id"]
        assert isinstance(r["text"], str) and 1 <= _sentences(r["text"]) <= 3, r["id"]
        assert isinstance(r["rationale"], str) and 1 <= _sentences(r["rationale"]) <= 2, r["id"]
        assert isinstance(r["emotions"], list) and 1 <= len(r["emotions"]) <= 3, r["id"]
        assert len(set(r["emotions"])) == len(r["emotions"]), r["id"]
        assert all(w == w.strip().lower() for w in r["emotions"]), r["id"]
    splits = _check_ids_and_splits(emotion_rows, "emo", {"train", "validation", "test"})
    assert splits["train"] >= 330 and splits["validation"] >= 150 and splits["test"] >= 270


def test_emotion_splits_follow_the_documented_rule(emotion_rows):
    # The first 463 rows keep their original split (index mod 11 in {3, 7, 10} -> test), so results
    # on them stay comparable; the rows added for a validation split alternate validation, test, ...
    assert [r["id"] for r in emotion_rows] == [f"emo-{n:04d}" for n in range(1, len(emotion_rows) + 1)]
    for n, r in enumerate(emotion_rows):
        if n < ORIGINAL_EMOTION_ROWS:
            expected = "test" if n % 11 in (3, 7, 10) else "train"
        else:
            expected = "validation" if (n - ORIGINAL_EMOTION_ROWS) % 2 == 0 else "test"
        assert r["split"] == expected, r["id"]


def test_every_emotion_word_maps_at_level1_in_all_five_wheels(emotion_rows, empathy_rows, wheel_level1):
    words = {w for r in emotion_rows for w in r["emotions"]} | {r["emotion"] for r in empathy_rows}
    unmapped = {w: wheel_level1(w) for w in words if None in wheel_level1(w)}
    assert unmapped == {}


def test_wheel_helper_matches_known_words(wheel_level1):
    # Guards the helper itself: "relieved" is dropped by wheels 2, 3 and 5, "sad" maps everywhere.
    assert wheel_level1("relieved") == ("happy", None, None, "joy", None)
    assert wheel_level1("sad") == ("sad",) * 5


def test_emotion_labels_are_varied(emotion_rows, wheel_level1):
    counts = Counter(w for r in emotion_rows for w in r["emotions"])
    assert len(counts) >= 60
    for common in ("happy", "sad", "angry", "anxious", "proud", "grateful", "lonely", "guilty", "embarrassed"):
        assert counts[common] >= 3, common
    # No word dominates, and both single- and multi-label rows are common.
    assert counts.most_common(1)[0][1] <= 0.1 * len(emotion_rows)
    n_labels = Counter(len(r["emotions"]) for r in emotion_rows)
    assert n_labels[1] >= 0.2 * len(emotion_rows) and n_labels[2] + n_labels[3] >= 0.4 * len(emotion_rows)
    assert n_labels[3] >= 15
    # Every level-1 family of wheel 1 is represented.
    families = {wheel_level1(w)[0] for w in counts}
    assert families == {"happy", "sad", "mad", "scared", "surprised", "disgusted"}
    # Each held-out split has its own spread: many words, every family, no family over 40% of its words.
    for split in ("validation", "test"):
        words = [w for r in emotion_rows if r["split"] == split for w in r["emotions"]]
        assert len(set(words)) >= 50, split
        split_families = Counter(wheel_level1(w)[0] for w in words)
        assert set(split_families) == families, split
        assert split_families.most_common(1)[0][1] <= 0.4 * len(words), split


def test_emotion_texts_are_not_near_duplicates(emotion_rows):
    texts = [r["text"] for r in emotion_rows]
    assert len({" ".join(t.lower().split()) for t in texts}) == len(texts)
    jac, a, b = _max_jaccard(texts)
    assert jac < 0.5, (a, b)


def test_held_out_emotion_situations_are_separate_from_training(emotion_rows):
    # Validation and test rows are new situations, not rewordings of training rows: each held-out
    # text's word-3-gram Jaccard similarity to every training text is below 0.25.
    train = [_shingles(r["text"]) for r in emotion_rows if r["split"] == "train"]
    for r in emotion_rows:
        if r["split"] != "train":
            held = _shingles(r["text"])
            assert max(_jaccard(held, t) for t in train) < 0.25, r["id"]


# --------------------------------------------------------------------------- facial

# Plain-word cues for each AU: a description listing an AU must name its movement. Each entry is a
# list of alternatives; an alternative matches when all its substrings occur in the description.
AU_CUES = {
    1: [("inner", "brow"), ("brows raised",), ("brows up",), ("brows lifted",), ("raised brows",)],
    2: [("outer", "brow"), ("arch",), ("brows", "high"), ("brows raised",), ("brows up",), ("brows lifted",)],
    4: [("brow", "together"), ("brow", "lower"), ("brow", "down"), ("furrow",), ("knit",), ("vertical",)],
    5: [("upper lid",), ("white",), ("wide",), ("stare",), ("staring",)],
    6: [("cheek",)],
    7: [("lid", "tight"), ("lid", "tens"), ("squint",), ("narrow",)],
    9: [("nose",)],
    10: [("upper lip",)],
    12: [("corner", "up"), ("corner", "lift"), ("corner", "rais"), ("corner", "ris"), ("corner", "curv"), ("smil",), ("grin",)],
    14: [("dimpl",), ("tuck",)],
    15: [("corner", "down"), ("corner", "sink"), ("droop",), ("sag",), ("downturn",)],
    16: [("lower lip",), ("bottom lip",)],
    17: [("chin",)],
    20: [("stretch",), ("grimace",), ("sideways",), ("taut",)],
    23: [("tight",), ("thin",)],
    24: [("press",), ("clamp",)],
    25: [("part",), ("apart",), ("open",), ("teeth",)],
    26: [("jaw",), ("agape",)],
    27: [("mouth", "wide"),],
    43: [("closed",), ("shut",)],
}
# A description names muscle movements, never the emotion or the AU codes.
GIVEAWAY = re.compile(
    r"\b(happ\w*|joy\w*|sad\w*|surpris\w*|fear\w*|afraid|scared|terrif\w*|shock\w*|anger|angry|"
    r"furious|rage|disgust\w*|contempt\w*|smirk\w*|sneer\w*|scorn\w*|neutral|AU ?\d+)\b",
    re.IGNORECASE,
)


def test_facial_size_schema_and_split(facial_rows):
    assert len(facial_rows) >= 160
    for r in facial_rows:
        assert set(r) in ({"id", "description", "aus", "emotion", "split"}, {"id", "description", "aus", "emotion", "rationale", "split"})
        assert isinstance(r["description"], str) and len(r["description"].split()) >= 12, r["id"]
        assert isinstance(r["aus"], list) and all(type(a) is int for a in r["aus"]), r["id"]
        assert r["aus"] == sorted(set(r["aus"])), r["id"]
        assert r["emotion"] in FACIAL_LABELS, r["id"]
    splits = _check_ids_and_splits(facial_rows, "fac")
    assert splits["train"] >= 110 and splits["test"] >= 35
    per_split = Counter((r["split"], r["emotion"]) for r in facial_rows)
    for label in FACIAL_LABELS:
        assert per_split["train", label] >= 12 and per_split["test", label] >= 4, label


def test_facial_aus_agree_with_emfacs_prototypes(facial_rows, au_table):
    known, prototypes = au_table
    for r in facial_rows:
        aus = set(r["aus"])
        assert aus <= known, r["id"]
        if r["emotion"] == "neutral":
            assert aus == set(), r["id"]
            continue
        assert len(aus & prototypes[r["emotion"]]) >= 2, r["id"]
        # The row's own prototype is strictly the closest one, so the AUs alone identify the label.
        scores = {e: _jaccard(aus, p) for e, p in prototypes.items()}
        assert all(scores[r["emotion"]] > s for e, s in scores.items() if e != r["emotion"]), (r["id"], scores)


def test_facial_descriptions_name_each_movement_but_not_the_emotion(facial_rows):
    for r in facial_rows:
        text = r["description"].lower()
        for au in r["aus"]:
            assert any(all(s in text for s in alt) for alt in AU_CUES[au]), (r["id"], au)
        assert not GIVEAWAY.search(r["description"]), (r["id"], GIVEAWAY.search(r["description"]).group(0))


def test_facial_descriptions_are_not_near_duplicates(facial_rows):
    jac, a, b = _max_jaccard([r["description"] for r in facial_rows])
    assert jac < 0.5, (a, b)


# --------------------------------------------------------------------------- empathy

CLICHES = re.compile(
    r"sorry to hear|sorry for your loss|everything happens for a reason|i know (exactly )?how you feel|"
    r"i understand how you feel|stay positive|bright side|time heals|at least you|could be worse|"
    r"you('ve| have) got this|hang in there|don't worry|it will all work out|things will get better",
    re.IGNORECASE,
)


FUNCTION_WORDS = set("that this with have from they them then than what when your just been were will into some more much very also only even ever since every year about after again because before being could would should their there these those which while where other thing things really still think".split())


def _stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in FUNCTION_WORDS}


def test_empathy_size_schema_and_split(empathy_rows):
    assert len(empathy_rows) >= 160
    for r in empathy_rows:
        assert set(r) == {"id", "messages", "persona", "emotion", "reference", "split"}, r["id"]
        assert isinstance(r["persona"], str) and r["persona"], r["id"]
        assert [m["role"] for m in r["messages"]] == ["user"], r["id"]
        assert 2 <= _sentences(r["messages"][0]["content"]) <= 5, r["id"]
        assert isinstance(r["emotion"], str) and r["emotion"] == r["emotion"].strip().lower(), r["id"]
    splits = _check_ids_and_splits(empathy_rows, "emp")
    assert splits["train"] >= 110 and splits["test"] >= 35
    assert len({r["emotion"] for r in empathy_rows}) >= 40


def test_empathy_references_are_good_replies(empathy_rows):
    for r in empathy_rows:
        ref = r["reference"]
        assert 2 <= _sentences(ref) <= 4, r["id"]
        assert not CLICHES.search(ref), (r["id"], CLICHES.search(ref).group(0))
        assert "?" in ref, r["id"]  # each reply ends on a gentle question or suggestion
        # Reflects specifics: shares at least two content-word stems with the message it answers.
        assert len(_stems(r["messages"][0]["content"]) & _stems(ref)) >= 2, r["id"]


def test_empathy_texts_are_not_near_duplicates(empathy_rows):
    for texts in ([r["messages"][0]["content"] for r in empathy_rows], [r["reference"] for r in empathy_rows]):
        assert len(set(texts)) == len(texts)
        jac, a, b = _max_jaccard(texts)
        assert jac < 0.5, (a, b)
