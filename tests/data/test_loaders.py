"""Loaders: every local format, column mapping, splits, hub ids (faked) and DataArguments checks."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

from affect_rl.data import DataArguments, load_splits, loaders, sources
from affect_rl.errors import ConfigError, DataError

EMOTION_ROWS = [
    {"id": f"e{i:02d}", "text": f"Situation number {i}.", "emotions": ["joy", "pride"] if i % 2 else ["sad"]}
    for i in range(30)
]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _all_rows(splits: DatasetDict) -> list[dict]:
    return sorted(splits["train"].to_list() + splits["test"].to_list(), key=lambda row: row["id"])


COMMON = {"rationale": None, "context": None, "question": None, "confidence": None, "completion": None, "dataset": None}


def _expected_emotion_rows() -> list[dict]:
    return [row | COMMON for row in EMOTION_ROWS]


def _write(path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".jsonl":
        return _write_jsonl(path, EMOTION_ROWS)
    if suffix == ".json":
        path.write_text(json.dumps(EMOTION_ROWS), encoding="utf-8")
    elif suffix == ".csv":
        # Lists in CSV cells: JSON strings on some rows, comma strings on others.
        cells = [
            row | {"emotions": json.dumps(row["emotions"]) if i % 3 else ", ".join(row["emotions"])}
            for i, row in enumerate(EMOTION_ROWS)
        ]
        pd.DataFrame(cells).to_csv(path, index=False)
    else:
        Dataset.from_list(EMOTION_ROWS).to_parquet(str(path))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_each_local_format_loads_the_same_normalised_rows(tmp_path, suffix):
    path = _write(tmp_path / f"rows{suffix}")
    splits = load_splits(DataArguments(dataset=str(path), task="emotion", test_size=0.2))
    assert (len(splits["train"]), len(splits["test"])) == (24, 6)
    assert _all_rows(splits) == _expected_emotion_rows()


def test_seeded_split_is_reproducible_and_seed_dependent(tmp_path):
    path = _write_jsonl(tmp_path / "rows.jsonl", EMOTION_ROWS)

    def test_ids(seed):
        return load_splits(DataArguments(dataset=str(path), task="emotion", split_seed=seed))["test"]["id"]

    assert test_ids(1) == test_ids(1)
    assert test_ids(1) != test_ids(2)
    assert len(test_ids(1)) == 3


def test_split_column_gives_the_fixed_split_and_is_dropped(tmp_path):
    rows = [row | {"split": "test" if i < 4 else "train"} for i, row in enumerate(EMOTION_ROWS)]
    splits = load_splits(DataArguments(dataset=str(_write_jsonl(tmp_path / "r.jsonl", rows)), task="emotion"))
    assert splits["test"]["id"] == ["e00", "e01", "e02", "e03"]
    assert len(splits["train"]) == 26
    assert "split" not in splits["train"].column_names


def test_split_column_without_the_test_split_holds_out_of_train(tmp_path):
    rows = [row | {"split": "validation" if i < 4 else "train"} for i, row in enumerate(EMOTION_ROWS)]
    path = _write_jsonl(tmp_path / "r.jsonl", rows)
    splits = load_splits(DataArguments(dataset=str(path), task="emotion", test_size=0.25))
    assert (len(splits["train"]), len(splits["test"])) == (20, 6)  # 26 train rows, a quarter held out
    assert not {"e00", "e01", "e02", "e03"} & (set(splits["train"]["id"]) | set(splits["test"]["id"]))
    splits = load_splits(DataArguments(dataset=str(path), task="emotion", test_split="validation"))
    assert splits["test"]["id"] == ["e00", "e01", "e02", "e03"]
    with pytest.raises(DataError, match=r"has no split 'dev'; its splits are: validation, train. Set train_split"):
        load_splits(DataArguments(dataset=str(path), task="emotion", train_split="dev"))


def test_demo_sets_load_from_package_data_with_their_split(tmp_path, monkeypatch):
    demo = tmp_path / "demo"
    demo.mkdir()
    rows = [
        {
            "id": "f1",
            "split": "train",
            "description": "Wide smile.",
            "aus": [6, 12],
            "emotion": "happiness",
            "rationale": "r",
        },
        {"id": "f2", "split": "test", "description": "Frown.", "aus": "4,15", "emotion": "sadness", "rationale": "r"},
    ]
    _write_jsonl(demo / "facial.jsonl", rows)
    monkeypatch.setattr(sources, "files", lambda package: tmp_path)
    splits = load_splits(DataArguments(dataset="demo:facial"))
    assert splits["train"]["id"] == ["f1"]
    assert splits["test"][0]["aus"] == [4, 15]


def test_column_mapping_renames_before_validation(tmp_path):
    rows = [
        {"id": r["id"], "situation": r["text"], "labels": ", ".join(r["emotions"]), "emotions": "stale"}
        for r in EMOTION_ROWS
    ]
    args = DataArguments(
        dataset=str(_write_jsonl(tmp_path / "r.jsonl", rows)),
        task="emotion",
        column_mapping='{"situation": "text", "labels": "emotions"}',
    )
    assert _all_rows(load_splits(args)) == _expected_emotion_rows()


def test_column_mapping_of_an_absent_column_lists_the_columns(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", EMOTION_ROWS)
    with pytest.raises(
        DataError,
        match=r"column_mapping names 'situation', which the data does not have; its columns are: id, text, emotions",
    ):
        load_splits(DataArguments(dataset=str(path), task="emotion", column_mapping={"situation": "text"}))


def test_missing_column_suggests_column_mapping(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", [{"situation": "x", "emotions": "joy"}])
    with pytest.raises(DataError) as error:
        load_splits(DataArguments(dataset=str(path), task="emotion"))
    assert str(error.value) == (
        f"{path}: emotion rows need the column(s) text; the data has situation, emotions. "
        'Rename yours with column_mapping, e.g. {"your_column": "text"}, or set format: to the dataset\'s '
        "upstream format (`affect-rl data formats`)"
    )


def test_bad_jsonl_row_error_names_file_line_and_field(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "a", "emotions": "joy"}\n\n{"text": "b", "emotions": []}\n', encoding="utf-8")
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(path))}, row 3, field 'emotions': expected a list of emotion words"
    ):
        load_splits(DataArguments(dataset=str(path), task="emotion"))


def test_bad_csv_row_is_numbered_as_in_a_spreadsheet(tmp_path):
    path = tmp_path / "faces.csv"
    path.write_text('description,aus,emotion\nsmile,"6,12",happiness\nfrown,"4,brow",sadness\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, row 3, field 'aus'"):
        load_splits(DataArguments(dataset=str(path), task="facial"))


def test_invalid_json_line_is_located(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "a", "emotions": "joy"}\n{"text": "b", emotions}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, line 2: not valid JSON"):
        load_splits(DataArguments(dataset=str(path), task="emotion"))


def test_missing_file_names_path_and_accepted_formats(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no such file; give an existing data file, a folder"):
        load_splits(DataArguments(dataset=str(path), task="emotion"))
    other = tmp_path / "rows.txt"
    other.write_text("x")
    with pytest.raises(DataError, match=r"rows.txt: unsupported file type; accepted: .jsonl, .json, .csv, .tsv"):
        load_splits(DataArguments(dataset=str(other), task="emotion"))


def test_max_samples_truncate_each_split(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", EMOTION_ROWS)
    splits = load_splits(DataArguments(dataset=str(path), task="emotion", max_train_samples=5, max_test_samples=2))
    assert (len(splits["train"]), len(splits["test"])) == (5, 2)


def _fake_hub(monkeypatch, loaded):
    calls = []

    def fake_load_dataset(name, config=None, **kwargs):
        calls.append((name, config))
        if isinstance(loaded, Exception):
            raise loaded
        return loaded

    monkeypatch.setattr("datasets.load_dataset", fake_load_dataset)
    return calls


def _hub_faces(n: int) -> Dataset:
    features = Features(
        {"desc": Value("string"), "au_list": List(Value("int64")), "label": ClassLabel(names=["anger", "happiness"])}
    )
    rows = {"desc": [f"face {i}" for i in range(n)], "au_list": [[6, 12]] * n, "label": [1] * n}
    return Dataset.from_dict(rows, features=features)


def test_hub_dataset_uses_its_splits_and_class_label_names(monkeypatch):
    calls = _fake_hub(monkeypatch, DatasetDict(train=_hub_faces(6), test=_hub_faces(2)))
    args = DataArguments(
        dataset="someone/faces",
        dataset_config="small",
        task="facial",
        column_mapping={"desc": "description", "au_list": "aus", "label": "emotion"},
    )
    splits = load_splits(args)
    assert calls == [("someone/faces", "small")]
    assert (len(splits["train"]), len(splits["test"])) == (6, 2)
    assert splits["test"][0] == {"description": "face 0", "aus": [6, 12], "emotion": "happiness"} | COMMON


def test_hub_dataset_without_test_split_is_held_out(monkeypatch):
    _fake_hub(monkeypatch, DatasetDict(train=_hub_faces(10)))
    args = DataArguments(
        dataset="someone/faces",
        task="facial",
        test_size=0.3,
        column_mapping={"desc": "description", "au_list": "aus", "label": "emotion"},
    )
    splits = load_splits(args)
    assert (len(splits["train"]), len(splits["test"])) == (7, 3)


def test_hub_errors_are_data_errors(monkeypatch):
    _fake_hub(monkeypatch, DatasetDict(validation=_hub_faces(2)))
    mapping = {"desc": "description", "au_list": "aus", "label": "emotion"}
    with pytest.raises(DataError, match=r"has no split 'train'; its splits are: validation. Set train_split"):
        load_splits(DataArguments(dataset="someone/faces", task="facial", column_mapping=mapping))
    _fake_hub(monkeypatch, ConnectionError("offline"))
    with pytest.raises(DataError, match=r"could not load the Hugging Face dataset 'someone/faces': offline"):
        load_splits(DataArguments(dataset="someone/faces", task="facial"))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"dataset": "demo:emotion", "template": "kardia"}, "template 'kardia' does not fit task 'emotion'"),
        ({"dataset": "demo:emotion", "template": "calibrated"}, "Set template to one of: r1, humanomni"),
        ({"dataset": "demo:empathy", "template": "facial_cot"},
         "Set template to one of: r1, kardia, calibrated, emocaliber, humanomni"),
        ({"dataset": "demo:facial", "template": "facial-cot"}, "Did you mean 'facial_cot'?"),
        ({"dataset": "demo:emotion", "label_set": ["joy"]}, "label_set applies to the label task"),
        ({"dataset": "demo:emotion", "invalid_completions": "drop"}, "invalid_completions must be one of error, skip"),
        ({"dataset": "demo:emotion", "train_split": "train[:x]"}, "is not a split name with an optional slice"),
        ({"dataset": "rows.jsonl", "format": "emobenhc"}, "unknown format 'emobenhc'"),
        ({"dataset": "a.jsonl", "dataset_mixture": [{"dataset": "b.jsonl"}], "task": "emotion"},
         "set either dataset or dataset_mixture"),
        ({"dataset_mixture": [{"dataset": "b.jsonl", "weight": 1.5}], "task": "emotion"}, "weight is the share"),
        ({"dataset_mixture": [{"dataset": "b.jsonl", "wieght": 0.5}], "task": "emotion"}, "Did you mean 'weight'?"),
        ({"dataset": "demo:emotoin"}, "Did you mean 'demo:emotion'?"),
        ({"dataset": "demo:facial", "task": "emotion"}, "set task: facial or dataset: demo:emotion"),
        ({"dataset": "rows.jsonl"}, "set task for dataset 'rows.jsonl'"),
        ({"dataset": "rows.jsonl", "task": "emotions"}, "Did you mean 'emotion'?"),
        (
            {"dataset": "rows.jsonl", "task": "emotion", "dataset_config": "x"},
            "applies to Hugging Face dataset ids only",
        ),
        ({"column_mapping": "{situation: text}"}, "must be a JSON object"),
        ({"column_mapping": {"a": "text", "b": "text"}}, "sends several columns to text"),
        ({"test_size": 0.0}, "test_size must be a fraction between 0 and 1"),
        ({"test_split": "train"}, "give the test split its own name"),
        ({"max_train_samples": 0}, "max_train_samples must be a positive number"),
    ],
)
def test_data_arguments_reject_bad_combinations(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        DataArguments(**options)


def test_data_arguments_defaults_and_source_kinds(tmp_path):
    args = DataArguments()
    assert (args.dataset, args.task, args.template, args.column_mapping) == ("demo:emotion", "emotion", "r1", {})
    assert DataArguments(dataset="org/name", task="emotion").source_kind == "hub"
    assert DataArguments(dataset="data/rows.csv", task="emotion").source_kind == "local"
    assert DataArguments(dataset=str(tmp_path), task="emotion").source_kind == "local"


@pytest.mark.parametrize("task", ["emotion", "facial", "empathy"])
def test_builtin_demo_sets_validate_with_a_disjoint_fixed_split(task):
    if not (Path(loaders.__file__).parent / "demo" / f"{task}.jsonl").is_file():
        pytest.skip(f"demo:{task} is not written yet")
    splits = load_splits(DataArguments(dataset=f"demo:{task}"))
    assert len(splits["train"]) > len(splits["test"]) > 0
    assert not set(splits["train"]["id"]) & set(splits["test"]["id"])
