"""Task rows: normalisation of what files really hold, and errors that locate the problem."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from affect_rl.data.tasks import TASKS, check_rows, validate_rows
from affect_rl.errors import ConfigError, DataError


def _one(row, task):
    return validate_rows([row], task, "rows.jsonl")[0]


@pytest.mark.parametrize(
    "given_emotions, expected",
    [
        ("Anxious, hopeful", ["anxious", "hopeful"]),
        ('["Joy", "pride"]', ["joy", "pride"]),
        ("sad; lonely;", ["sad", "lonely"]),
        (["Calm", "calm", " relieved "], ["calm", "relieved"]),
    ],
)
def test_emotions_become_lowercase_word_lists(given_emotions, expected):
    assert _one({"text": " I won. ", "emotions": given_emotions}, "emotion")["emotions"] == expected


@pytest.mark.parametrize(
    "given_aus, expected",
    [
        ("1,2,4", [1, 2, 4]),
        ("AU12+AU6", [6, 12]),
        ("au4 au1", [1, 4]),
        ("[15, 1, 4]", [1, 4, 15]),
        (12.0, [12]),
        ([6.0, "AU12", 6], [6, 12]),
        ([], []),
    ],
)
def test_action_units_become_sorted_unique_ints(given_aus, expected):
    row = _one({"description": "a face", "aus": given_aus, "emotion": " Happiness "}, "facial")
    assert row["aus"] == expected
    assert row["emotion"] == "happiness"


@given(st.lists(st.integers(min_value=1, max_value=99), min_size=1, max_size=8))
def test_action_units_from_a_comma_string_equal_the_list(codes):
    from_string = _one({"description": "x", "aus": ",".join(map(str, codes)), "emotion": "fear"}, "facial")
    assert from_string["aus"] == sorted(set(codes))


def test_messages_from_json_string_and_plain_string():
    as_json = '[{"role": "user", "content": "I lost my job."}, {"role": "assistant", "content": "Oh no."}]'
    row = _one({"messages": as_json, "emotion": "Devastated", "confidence": "0.7"}, "empathy")
    assert row["messages"] == [
        {"role": "user", "content": "I lost my job."},
        {"role": "assistant", "content": "Oh no."},
    ]
    assert row["confidence"] == 0.7
    assert _one({"messages": "I lost my job.", "emotion": "sad"}, "empathy")["messages"] == [
        {"role": "user", "content": "I lost my job."}
    ]


COMMON = {"rationale": None, "context": None, "question": None, "confidence": None, "completion": None, "dataset": None}


def test_optional_fields_are_filled_with_none_and_extra_columns_kept():
    row = _one({"id": "e1", "text": "x", "emotions": ["joy"], "context": ""}, "emotion")
    assert row == {"id": "e1", "text": "x", "emotions": ["joy"]} | COMMON


def test_rows_share_one_set_of_columns():
    rows = validate_rows(
        [{"text": "a", "emotions": "joy"}, {"text": "b", "emotions": "awe", "source": "forum"}], "emotion", "f.jsonl"
    )
    assert [sorted(row) for row in rows] == [sorted(["emotions", "source", "text", *COMMON])] * 2
    assert rows[0]["source"] is None


@pytest.mark.parametrize(
    "task, bad_row, field, expected",
    [
        ("emotion", {"text": "x"}, "emotions", "a list of emotion words"),
        ("emotion", {"text": "x", "emotions": ""}, "emotions", "a list of emotion words"),
        ("emotion", {"text": "x", "emotions": [1, 2]}, "emotions", "a list of emotion words"),
        ("emotion", {"text": 5, "emotions": "joy"}, "text", "a non-empty string"),
        ("facial", {"description": "x", "aus": "AU1, brow", "emotion": "fear"}, "aus", "Action Unit numbers"),
        ("facial", {"description": "x", "aus": [0], "emotion": "fear"}, "aus", "Action Unit numbers"),
        ("facial", {"description": "x", "aus": [True], "emotion": "fear"}, "aus", "Action Unit numbers"),
        (
            "facial",
            {"description": "x", "aus": [1], "emotion": "fear", "confidence": 1.0},
            "confidence",
            "strictly between 0 and 1",
        ),
        ("empathy", {"messages": [{"role": "bot", "content": "hi"}], "emotion": "sad"}, "messages", '"role": "user"'),
        ("empathy", {"messages": [], "emotion": "sad"}, "messages", "non-empty list"),
        ("empathy", {"messages": "hi"}, "emotion", "one label"),
    ],
)
def test_bad_row_names_file_row_field_and_expectation(task, bad_row, field, expected):
    good = {
        "emotion": {"text": "fine", "emotions": "joy"},
        "facial": {"description": "smile", "aus": [6, 12], "emotion": "happiness"},
        "empathy": {"messages": "hi", "emotion": "glad"},
    }[task]
    with pytest.raises(DataError) as error:
        validate_rows([good, good, bad_row], task, "data/train.jsonl", row_numbers=[1, 2, 4])
    message = str(error.value)
    assert message.startswith(f"data/train.jsonl, row 4, field '{field}'")
    assert expected in message


def test_facial_row_needs_description_or_image():
    with pytest.raises(DataError, match=r"faces.csv, row 1, field 'description' or 'image' or 'images' is missing"):
        validate_rows([{"aus": [1], "emotion": "fear"}], "facial", "faces.csv")
    assert (
        validate_rows([{"image": "face.png", "aus": [1], "emotion": "fear"}], "facial", "f")[0]["image"] == "face.png"
    )


def test_row_that_is_not_an_object():
    with pytest.raises(DataError, match=r"f.jsonl, row 2: expected an object"):
        validate_rows([{"text": "a", "emotions": "joy"}, ["a", "joy"]], "emotion", "f.jsonl")


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="accepted tasks: emotion, label, choice, facial, empathy"):
        validate_rows([], "sentiment", "f.jsonl")


def test_every_task_has_a_required_gold_field():
    assert {name: task.required_columns for name, task in TASKS.items()} == {
        "emotion": ["text", "emotions"],
        "label": ["label"],
        "choice": ["question", "options", "answer"],
        "facial": ["aus", "emotion"],
        "empathy": ["messages", "emotion"],
    }


@pytest.mark.parametrize(
    "options, answer, expected_options, expected_answer",
    [
        (["joy", "fear", "pride"], "A,C", ["joy", "fear", "pride"], ["A", "C"]),
        (["A. joy", "B. fear"], "b", ["joy", "fear"], ["B"]),
        ({"B": "fear", "A": "joy", "C": "awe", "D": "calm"}, "ACD", ["joy", "fear", "awe", "calm"], ["A", "C", "D"]),
        ('{"A": "joy", "B": "fear"}', ["B"], ["joy", "fear"], ["B"]),
        ('["joy", "fear"]', "Fear", ["joy", "fear"], ["B"]),
        (["joy", "fear", "awe"], 2, ["joy", "fear", "awe"], ["C"]),
        (["joy", "fear", "awe"], "A and C", ["joy", "fear", "awe"], ["A", "C"]),
    ],
)
def test_choice_rows_normalise_options_to_texts_and_answers_to_letters(options, answer, expected_options, expected_answer):
    row = _one({"question": "How does she feel?", "options": options, "answer": answer}, "choice")
    assert row["options"] == expected_options
    assert row["answer"] == expected_answer
    assert row["multi_answer"] is (len(expected_answer) > 1)


@pytest.mark.parametrize(
    "row, field, expected",
    [
        ({"question": "q", "options": ["joy", "fear"], "answer": "C"}, "answer", "letters among A, B"),
        ({"question": "q", "options": ["joy", "fear"], "answer": "anger"}, "answer", "an option's text"),
        ({"question": "q", "options": ["joy"], "answer": "A"}, "options", "at least 2 options"),
        ({"question": "q", "options": {"A": "joy", "C": "fear"}, "answer": "A"}, "options", "at least 2 options"),
        ({"question": "q", "options": ["joy", "fear"]}, "answer", "is missing"),
    ],
)
def test_bad_choice_rows_name_the_field(row, field, expected):
    with pytest.raises(DataError, match=rf"pceb.json, row 1, field '{field}'.*{expected}"):
        validate_rows([row], "choice", "pceb.json")


def test_label_rows_take_text_or_media_and_a_closed_label_set():
    row = _one({"video": "clips/a.mp4", "label": "Sad", "labels": "sad, happy, neutral"}, "label")
    assert (row["label"], row["labels"], row["video"], row["text"]) == ("sad", ["sad", "happy", "neutral"], "clips/a.mp4", None)
    with pytest.raises(DataError, match=r"row 1, field 'text' or 'image' or 'images' or 'video' or 'audio' is missing"):
        _one({"label": "sad"}, "label")


def test_every_task_accepts_completion_question_and_media_columns():
    row = _one({"text": "t", "emotions": "joy", "completion": " <think>x</think><answer>joy</answer> ",
                "question": "Which?", "image": "face.png", "dataset": "mer"}, "emotion")
    assert (row["completion"], row["question"], row["image"], row["dataset"]) == (
        "<think>x</think><answer>joy</answer>", "Which?", "face.png", "mer")


def test_a_column_that_mixes_kinds_of_value_names_the_rows():
    rows = [{"text": "a", "emotions": "joy", "score": 3}, {"text": "b", "emotions": "awe", "score": "high"}]
    with pytest.raises(DataError, match=r"f.csv, row 2, field 'score': holds a string where row 1 holds a number"):
        validate_rows(rows, "emotion", "f.csv")
    collected = check_rows(rows, "emotion", "f.csv", collect=True)
    assert [row["text"] for row in collected.rows] == ["a"]
    assert [(p.row, p.kind) for p in collected.problems] == [(2, "mixed types")]


@pytest.mark.parametrize("aus", [[1000], [-1], [1.5], "AU6+12x"])
def test_action_units_out_of_range_or_malformed_are_refused(aus):
    with pytest.raises(DataError, match="field 'aus': expected a list of Action Unit numbers 1-999"):
        _one({"description": "x", "aus": aus, "emotion": "fear"}, "facial")


def test_oversized_text_is_a_data_error():
    with pytest.raises(DataError, match="field 'text': expected a non-empty string"):
        _one({"text": "x" * 200_001, "emotions": "joy"}, "emotion")
