"""Sources and splits as users bring them: folders, saved datasets, .gz, TSV, slices, mixtures, eval-only files."""

import gzip
import json
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from affect_rl.data import DataArguments, load_eval_rows, load_splits
from affect_rl.data.heldout import FINGERPRINTS_FILE, HELDOUT_FILE, row_fingerprint, save_stage_rows, trained_on
from affect_rl.data.media import check_text_model_rows
from affect_rl.errors import DataError


def rows(prefix: str, n: int, **extra) -> list[dict]:
    return [{"id": f"{prefix}{i}", "text": f"{prefix} situation {i}", "emotions": ["joy"], **extra} for i in range(n)]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def ids(dataset) -> list[str]:
    return [row["id"] for row in dataset]


def test_a_folder_of_files_takes_its_splits_from_the_file_names(tmp_path):
    write_jsonl(tmp_path / "data" / "train.jsonl", rows("tr", 6))
    write_jsonl(tmp_path / "data" / "test-00000-of-00001.jsonl", rows("te", 2))
    write_jsonl(tmp_path / "data" / "validation.jsonl", rows("va", 3))
    args = DataArguments(dataset=str(tmp_path / "data"), task="emotion")
    splits = load_splits(args)
    assert (ids(splits["train"]), ids(splits["test"])) == ([f"tr{i}" for i in range(6)], ["te0", "te1"])
    assert [row["id"] for row in load_eval_rows(args, "validation")] == ["va0", "va1", "va2"]


def test_a_folder_mixing_split_files_and_other_files_is_refused(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", rows("tr", 2))
    write_jsonl(tmp_path / "extra.jsonl", rows("x", 2))
    with pytest.raises(DataError, match=r"the files extra.jsonl name no split while others do"):
        load_splits(DataArguments(dataset=str(tmp_path), task="emotion"))


def test_a_dataset_saved_with_save_to_disk_loads_with_its_splits(tmp_path):
    DatasetDict(train=Dataset.from_list(rows("tr", 4)), test=Dataset.from_list(rows("te", 1))).save_to_disk(
        tmp_path / "saved")
    splits = load_splits(DataArguments(dataset=str(tmp_path / "saved"), task="emotion"))
    assert (ids(splits["train"]), ids(splits["test"])) == (["tr0", "tr1", "tr2", "tr3"], ["te0"])


def test_gzipped_jsonl_and_tsv_load_like_their_plain_files(tmp_path):
    gz = tmp_path / "rows.jsonl.gz"
    gz.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows("g", 10)).encode()))
    tsv = tmp_path / "rows.tsv"
    tsv.write_text("id\ttext\temotions\n" + "".join(f"t{i}\tsituation, with a comma\tjoy, awe\n" for i in range(10)))
    gz_rows = load_eval_rows(DataArguments(dataset=str(gz), task="emotion"))
    tsv_rows = load_eval_rows(DataArguments(dataset=str(tsv), task="emotion"))
    assert [r["id"] for r in gz_rows] == [f"g{i}" for i in range(10)]
    assert tsv_rows[0]["text"] == "situation, with a comma" and tsv_rows[0]["emotions"] == ["joy", "awe"]


def test_a_csv_row_with_a_cell_too_many_is_named_not_shifted(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text('id,text,emotions\na,fine,joy\nb,one, too many,joy\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"rows.csv, row 3: 4 cells for the 3 columns of the header \(id, text, emotions\)"):
        load_eval_rows(DataArguments(dataset=str(path), task="emotion"))


def test_an_undecodable_file_names_the_line_and_the_fix(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes("id,text,emotions\na,caf\u00e9 au lait,joy\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"rows.csv, line 2: byte b'\\xe9' is not valid utf-8.*set `encoding:`"):
        load_eval_rows(DataArguments(dataset=str(path), task="emotion"))
    loaded = load_eval_rows(DataArguments(dataset=str(path), task="emotion", encoding="latin-1"))
    assert loaded[0]["text"] == "caf\u00e9 au lait"


def test_split_slices_take_counts_and_percentages(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [r | {"split": "train"} for r in rows("tr", 20)]
                       + [r | {"split": "test"} for r in rows("te", 10)])
    splits = load_splits(DataArguments(dataset=str(path), task="emotion", train_split="train[:5]",
                                       test_split="test[50%:]"))
    assert ids(splits["train"]) == [f"tr{i}" for i in range(5)]
    assert ids(splits["test"]) == [f"te{i}" for i in range(5, 10)]
    assert [r["id"] for r in load_eval_rows(DataArguments(dataset=str(path), task="emotion"), "test[-2:]")] == [
        "te8", "te9"]


def test_an_unsplit_file_is_evaluated_whole(tmp_path):
    path = write_jsonl(tmp_path / "benchmark.jsonl", rows("b", 200))
    assert len(load_eval_rows(DataArguments(dataset=str(path), task="emotion"))) == 200
    only_test = write_jsonl(tmp_path / "only_test.jsonl", [r | {"split": "test"} for r in rows("t", 7)])
    assert len(load_eval_rows(DataArguments(dataset=str(only_test), task="emotion"))) == 7
    with pytest.raises(DataError, match="has no training rows|has no split 'train'"):
        load_splits(DataArguments(dataset=str(only_test), task="emotion"))


def test_a_mixture_keeps_each_sources_share_and_names_the_source(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [r | {"split": "train"} for r in rows("a", 20)] + [
        r | {"split": "test"} for r in rows("at", 2)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": f"b{i}", "situation": f"b {i}", "labels": "awe"} for i in range(10)])
    args = DataArguments(task="emotion", test_size=0.2, dataset_mixture=[
        {"dataset": str(a), "weight": 0.5},
        {"dataset": str(b), "name": "forum", "column_mapping": {"situation": "text", "labels": "emotions"}},
    ])  # fmt: skip
    splits = load_splits(args)
    by_source = [row["dataset"] for row in splits["train"]]
    assert by_source.count("a") == 10 and by_source.count("forum") == 8
    assert sorted(row["dataset"] for row in splits["test"]) == ["a", "a", "forum", "forum"]
    assert load_splits(args)["train"]["id"] == splits["train"]["id"]  # seeded


def test_media_paths_resolve_against_the_dataset_folder_and_can_be_ignored(tmp_path):
    path = write_jsonl(tmp_path / "sub" / "faces.jsonl", [
        {"image": "img/a.png", "aus": [6, 12], "emotion": "happiness"},
        {"image": "/abs/b.png", "description": "frown", "aus": [4], "emotion": "anger"},
        {"images": ["img/c.png", "https://x.org/d.png"], "aus": [1], "emotion": "fear"},
    ])  # fmt: skip
    loaded = load_eval_rows(DataArguments(dataset=str(path), task="facial"))
    assert loaded[0]["image"] == str((tmp_path / "sub" / "img" / "a.png").resolve())
    assert loaded[1]["image"] == "/abs/b.png"
    assert loaded[2]["images"] == [str((tmp_path / "sub" / "img" / "c.png").resolve()), "https://x.org/d.png"]
    with pytest.raises(DataError, match=r"row 1 has a 'image' column, but smollm2-135m-instruct is a text model"):
        check_text_model_rows(loaded, "smollm2-135m-instruct")
    # Without its media, a face with no description has nothing left to show: named, not dropped.
    with pytest.raises(DataError, match=r"faces.jsonl, row 1, field 'description' or 'image' or 'images' is missing"):
        load_eval_rows(DataArguments(dataset=str(path), task="facial", ignore_media=True))
    described = write_jsonl(tmp_path / "described.jsonl", [{"image": "a.png", "description": "smile", "aus": [12],
                                                              "emotion": "happiness"}])  # fmt: skip
    text_only = load_eval_rows(DataArguments(dataset=str(described), task="facial", ignore_media=True))
    assert "image" not in text_only[0] and text_only[0]["description"] == "smile"
    check_text_model_rows(text_only, "smollm2-135m-instruct")


def test_stage_rows_record_the_heldout_rows_and_what_was_trained_on(tmp_path):
    train, heldout = rows("tr", 5), rows("te", 2)
    recorded = save_stage_rows(train, heldout, tmp_path / "stage")
    assert recorded == {"heldout": str(tmp_path / "stage" / HELDOUT_FILE), "heldout_rows": 2, "train_rows": 5}
    assert (tmp_path / "stage" / FINGERPRINTS_FILE).is_file()
    reloaded = load_eval_rows(DataArguments(dataset=recorded["heldout"], task="emotion"))
    assert [r["id"] for r in reloaded] == ["te0", "te1"]
    # The same example under another id is still the same example.
    probe = [heldout[0], train[3] | {"id": "renamed"}]
    assert trained_on(probe, tmp_path / "stage") == [1]
    assert row_fingerprint(train[0]) != row_fingerprint(train[1])


def test_a_hold_out_keeps_each_groups_rows_together(tmp_path):
    conversations = [{"id": f"c{c}t{t}", "text": f"conversation {c} turn {t}", "emotions": ["calm"], "group": f"c{c}"}
                     for c in range(10) for t in range(3)]  # fmt: skip
    path = write_jsonl(tmp_path / "turns.jsonl", conversations)
    splits = load_splits(DataArguments(dataset=str(path), task="emotion", test_size=0.2))
    test_groups = {row["group"] for row in splits["test"]}
    assert len(test_groups) == 2 and len(splits["test"]) == 6
    assert not test_groups & {row["group"] for row in splits["train"]}
