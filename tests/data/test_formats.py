"""Format adapters: rows written here in each upstream schema (never upstream data), loaded through
the real loader, checked value by value and as the stages render them; one bad row per adapter."""

import csv
import json
from pathlib import Path

import pytest

from affect_rl.cli import main
from affect_rl.data import DataArguments, load_splits
from affect_rl.data.formats import formats
from affect_rl.data.loaders import load_eval_rows, to_dataset
from affect_rl.data.rendering import render_prompt, render_target
from affect_rl.errors import ConfigError, DataError
from rewards.templates import get_template


def _jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _json(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _csv(path: Path, header: list[str], rows: list[list], lineterminator: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator=lineterminator)
        writer.writerows([header, *rows])
    return path


def _rows(path: Path, name: str, **data) -> list[dict]:
    """Every row of an unsplit file (as an eval scores them), checked to fit in an Arrow table."""
    rows = load_eval_rows(DataArguments(dataset=str(path), format=name, **data))
    to_dataset(rows)
    return rows


def _user(row: dict, task: str, template: str = "r1", **kwargs) -> str:
    return render_prompt(row, task, template, **kwargs)[1]["content"]


def _assert_names_missing_field(path: Path, name: str, row: int, field: str, **data) -> None:
    with pytest.raises(DataError) as caught:
        _rows(path, name, **data)
    message = str(caught.value)
    assert str(path) in message and f"row {row}" in message and repr(field) in message, message


def _resolved(path: Path) -> str:
    return str(path.resolve())


# ---- r1_omni ----

R1_OMNI_TARGET = "<think>Her brows knit and her voice shakes.</think>\n<answer>worried</answer>"
R1_OMNI_ROWS = [
    {"video": "DFEW/videos/0001.mp4", "conversations": [
        {"from": "human", "value": "<video>\n<audio>\nWhich emotion does the person show most clearly?"},
        {"from": "gpt", "value": "Angry"}]},
    {"video": "MER24/sample_0002.mp4", "clip_meta_path": "MER24/meta/0002.json", "conversations": [
        {"from": "human", "value": "<video>\n<audio>\nWhat does she feel? Think first."},
        {"from": "gpt", "value": R1_OMNI_TARGET}]},
]  # fmt: skip


def test_r1_omni_rows_carry_video_question_label_and_cold_start_completion(tmp_path):
    rows = _rows(_json(tmp_path / "r1.json", R1_OMNI_ROWS), "r1_omni")
    assert [row["video"] for row in rows] == [_resolved(tmp_path / "DFEW/videos/0001.mp4"),
                                              _resolved(tmp_path / "MER24/sample_0002.mp4")]  # fmt: skip
    assert [row["question"] for row in rows] == ["Which emotion does the person show most clearly?",
                                                 "What does she feel? Think first."]  # fmt: skip
    assert [row["label"] for row in rows] == ["angry", "worried"]
    assert [row["completion"] for row in rows] == [None, R1_OMNI_TARGET]
    assert rows[1]["clip_meta_path"] == "MER24/meta/0002.json"
    assert "Which emotion does the person show most clearly?" in _user(rows[0], "label")
    assert render_target(rows[0], "label", "r1").endswith("<answer>angry</answer>")
    assert render_target(rows[1], "label", "r1") == R1_OMNI_TARGET


def test_r1_omni_bad_rows(tmp_path):
    _assert_names_missing_field(_json(tmp_path / "r1.json", [R1_OMNI_ROWS[0], {"video": "a.mp4"}]), "r1_omni", 2,
                                "conversations")  # fmt: skip
    turns = [{"from": "human", "value": "<video>\nWhich?"}, {"from": "gpt", "value": "<think>x</think><answer></answer>"}]
    empty_answer = [{"video": "a.mp4", "conversations": turns}]
    with pytest.raises(DataError, match=r"row 1: the gpt value has no complete, non-empty <answer>"):
        _rows(_json(tmp_path / "empty.json", empty_answer), "r1_omni")


# ---- humanomni_v2 ----

HUMANOMNI_SOLUTION = ("<context>A woman talks softly in a kitchen.</context><think>She smiles while thanking him."
                      "</think><answer>C,E</answer>")  # fmt: skip
HUMANOMNI_ROWS = [
    {"problem": "Which emotions does the woman show at the end?", "problem_type": "emer_ov_mc",
     "options": ["A. Calm", "B. Annoyed", "C. Grateful", "D. Bored", "E. Hopeful", "F. Tense"],
     "solution": HUMANOMNI_SOLUTION, "answer": "C,E", "clean_list": ["Hopeful", "Grateful"], "data_type": "video",
     "video": "clips/a.mp4", "path": "clips/a.mp4"},
    {"problem": "What is the man holding?", "problem_type": "multiple choice", "options": ["A. A cup", "B. A book"],
     "solution": "<context>A man on a sofa.</context><think>Pages are visible.</think><answer>B</answer>",
     "answer": "B", "data_type": "image", "path": "frames/b.jpg"},
    {"problem": "Is the speaker angry?", "problem_type": "judge", "options": [],
     "solution": "<context>A level voice.</context><think>No raised tone.</think><answer>No</answer>",
     "answer": "No", "data_type": "image", "path": {"image": "frames/c.jpg", "audio": "audio/c.wav"}},
]  # fmt: skip
HUMANOMNI_FREE_FORM = {"problem": "Why does he laugh?", "problem_type": "free-form", "options": [],
                       "solution": "<context>.</context><think>.</think><answer>A joke.</answer>",
                       "answer": "A joke.", "data_type": "video", "path": "clips/d.mp4"}  # fmt: skip


def test_humanomni_v2_rows_are_choice_items_with_their_solution(tmp_path):
    rows = _rows(_jsonl(tmp_path / "h.jsonl", HUMANOMNI_ROWS), "humanomni_v2", template="humanomni")
    first, second, judge = rows
    assert first["options"] == ["Calm", "Annoyed", "Grateful", "Bored", "Hopeful", "Tense"]
    assert (first["answer"], first["multi_answer"], first["problem_type"]) == (["C", "E"], True, "emer_ov_mc")
    assert first["completion"] == HUMANOMNI_SOLUTION and first["question"] == HUMANOMNI_ROWS[0]["problem"]
    assert first["video"] == _resolved(tmp_path / "clips/a.mp4") and first["clean_list"] == ["Hopeful", "Grateful"]
    assert (second["options"], second["answer"], second["multi_answer"]) == (["A cup", "A book"], ["B"], False)
    assert second["image"] == _resolved(tmp_path / "frames/b.jpg") and second["video"] is None
    assert (judge["options"], judge["answer"], judge["problem_type"]) == (["Yes", "No"], ["B"], "judge")
    assert judge["image"] == _resolved(tmp_path / "frames/c.jpg")
    assert judge["audio"] == _resolved(tmp_path / "audio/c.wav")
    prompt = _user(first, "choice", "humanomni")
    assert "Question: Which emotions does the woman show at the end?\nOptions:\nA. Calm\nB. Annoyed\n" in prompt
    assert prompt.endswith("F. Tense\nAnswer with the letters of every correct option, e.g. A,C.")
    assert render_target(first, "choice", "humanomni") == HUMANOMNI_SOLUTION


def test_humanomni_v2_text_mode_takes_the_context_from_the_solution(tmp_path):
    path = _jsonl(tmp_path / "h.jsonl", HUMANOMNI_ROWS)
    rows = _rows(path, "humanomni_v2", template="humanomni", ignore_media=True,
                 format_options={"context_from_solution": True})  # fmt: skip
    assert [row["context"] for row in rows] == ["A woman talks softly in a kitchen.", "A man on a sofa.", "A level voice."]
    assert _user(rows[0], "choice", "humanomni").startswith("Context: A woman talks softly in a kitchen.\nQuestion: ")
    assert all(row.get("video") is None and row.get("image") is None for row in rows)
    assert all(row.get("context") is None for row in _rows(path, "humanomni_v2"))
    no_context = dict(HUMANOMNI_ROWS[1], solution="<think>Pages are visible.</think><answer>B</answer>")
    with pytest.raises(DataError, match=r"row 1: context_from_solution needs a solution with a non-empty <context>"):
        _rows(_jsonl(tmp_path / "bad.jsonl", [no_context]), "humanomni_v2", format_options={"context_from_solution": True})


def test_humanomni_v2_other_problem_types_are_refused_or_filtered(tmp_path):
    path = _jsonl(tmp_path / "h.jsonl", HUMANOMNI_ROWS + [HUMANOMNI_FREE_FORM])
    with pytest.raises(DataError, match=r"row 4: problem_type 'free-form' is not supported .*format_options: "
                                        r"\{problem_types: \[multiple choice, emer_ov_mc, judge\]\}"):  # fmt: skip
        _rows(path, "humanomni_v2")
    kept = _rows(path, "humanomni_v2", format_options={"problem_types": ["multiple choice", "emer_ov_mc", "judge"]})
    assert [row["problem_type"] for row in kept] == ["emer_ov_mc", "multiple choice", "judge"]
    assert [row["problem_type"] for row in _rows(path, "humanomni_v2", format_options={"problem_types": "judge"})] == [
        "judge"]  # fmt: skip
    bad = {key: value for key, value in HUMANOMNI_ROWS[1].items() if key != "problem_type"}
    _assert_names_missing_field(_jsonl(tmp_path / "bad.jsonl", [HUMANOMNI_ROWS[0], bad]), "humanomni_v2", 2,
                                "problem_type")  # fmt: skip


# ---- fea20k ----

FEA_TARGET = ("<think>Inner brows raised (AU1) and drawn together (AU4), lip corners down (AU15).</think>\n"
              "<answer>sadness</answer>")
FEA_ROWS = [
    {"id": "raf_0001", "dataset": "RAF-DB", "image": "faces/raf_0001.jpg",
     "question": "<image>What is the emotion of this face?", "AUs": ["AU1", "AU4", "AU15"], "labels": ["Sad"],
     "description": FEA_TARGET, "meta_info": {"source_label": "sad"}},
    {"id": "fer_0002", "dataset": "FER2013", "image": "faces/fer_0002.png", "question": "", "AUs": [],
     "labels": ["happy"], "description": "<think>A broad smile.</think>\n<answer>happiness</answer>", "meta_info": {}},
    {"id": "bad_0003", "dataset": "FER2013", "image": "faces/bad_0003.png", "question": "", "AUs": [],
     "labels": ["anger"], "description": "", "meta_info": {}, "is_valid": False},
]  # fmt: skip


def test_fea20k_rows_are_facial_rows_with_noun_labels_and_their_reasoning(tmp_path):
    rows = _rows(_jsonl(tmp_path / "RAF-DB-Train.jsonl", FEA_ROWS), "fea20k")
    assert [row["id"] for row in rows] == ["raf_0001", "fer_0002"]  # is_valid: false is skipped
    assert [row["emotion"] for row in rows] == ["sadness", "happiness"]
    assert [row["aus"] for row in rows] == [[1, 4, 15], []]
    assert [row["image"] for row in rows] == [_resolved(tmp_path / "faces/raf_0001.jpg"),
                                              _resolved(tmp_path / "faces/fer_0002.png")]  # fmt: skip
    assert [row["question"] for row in rows] == ["What is the emotion of this face?", None]
    assert rows[0]["completion"] == FEA_TARGET and rows[0]["description"] is None
    assert (rows[0]["dataset"], json.loads(rows[0]["meta_info"])) == ("RAF-DB", {"source_label": "sad"})
    assert _user(rows[0], "facial") == "What is the emotion of this face?"
    assert render_target(rows[0], "facial", "r1") == FEA_TARGET


def test_fea20k_unlabelled_rows_are_an_error_or_skipped_and_a_missing_field_is_named(tmp_path):
    unlabelled = FEA_ROWS[1] | {"id": "disfa_9", "labels": []}
    path = _jsonl(tmp_path / "DISFA.jsonl", [FEA_ROWS[0], unlabelled])
    with pytest.raises(DataError, match=r"row 2: labels is empty .*skip_unlabelled: true"):
        _rows(path, "fea20k")
    assert [row["id"] for row in _rows(path, "fea20k", format_options={"skip_unlabelled": True})] == ["raf_0001"]
    no_aus = {key: value for key, value in FEA_ROWS[0].items() if key != "AUs"}
    _assert_names_missing_field(_jsonl(tmp_path / "bad.jsonl", [no_aus]), "fea20k", 1, "AUs")


# ---- emocaliber ----

EMOCALIBER_TARGET = (
    "<think><element>A dog leaps into a lake.</element><human>A child laughs on the shore.</human><context>A sunny "
    "park.</context><interaction>The child cheers the dog on.</interaction><analysis>Playful motion and laughter "
    "suggest amusement.</analysis></think><answer>amusement</answer><confidence>0.81</confidence>"
)
MIKELS = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness"]
EMOCALIBER_ROWS = [
    {"conversations": [{"role": "user", "content": [
        {"type": "image", "image": "images/fi/0001.jpg"},
        {"type": "text", "text": "Which emotion does this picture evoke? Pick one candidate."}]}],
     "task": "FI-8", "ground_truth": "Awe", "candidates": MIKELS},
    {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                  {"role": "user", "content": "<image>How would a viewer feel looking at this?"},
                  {"role": "assistant", "content": EMOCALIBER_TARGET}],
     "images": ["images/emoset/0002.jpg"]},
]  # fmt: skip


def test_emocaliber_test_and_training_rows_become_label_rows(tmp_path):
    rows = _rows(_jsonl(tmp_path / "vec.jsonl", EMOCALIBER_ROWS), "emocaliber", template="emocaliber")
    test_row, train_row = rows
    assert (test_row["label"], test_row["labels"], test_row["dataset"]) == ("awe", MIKELS, "FI-8")
    assert test_row["question"] == "Which emotion does this picture evoke? Pick one candidate."
    assert test_row["image"] == _resolved(tmp_path / "images/fi/0001.jpg") and test_row["completion"] is None
    assert (train_row["label"], train_row["completion"]) == ("amusement", EMOCALIBER_TARGET)
    assert train_row["question"] == "How would a viewer feel looking at this?"
    assert train_row["image"] == _resolved(tmp_path / "images/emoset/0002.jpg")
    assert "Answer with one of: amusement, anger, awe, contentment" in _user(test_row, "label", "emocaliber")
    assert render_target(train_row, "label", "emocaliber") == EMOCALIBER_TARGET
    _assert_names_missing_field(_jsonl(tmp_path / "bad.jsonl", [{"task": "FI-2", "ground_truth": "positive"}]),
                                "emocaliber", 1, "conversations")  # fmt: skip


# ---- kardiabench ----


def _kardia_turn(emotion: str, reply: str, special: bool = True) -> str:
    spans = {"understanding": "The user is stuck waiting.", "reasoning": "Uncertainty feeds worry.",
             "emotion": emotion, "response": reply}  # fmt: skip
    if special:
        return "".join(f"<|{name}_begin|>{text}<|{name}_end|>" for name, text in spans.items())
    return "".join(f"<{name}>{text}</{name}>" for name, text in spans.items())


KARDIA_ROW = {
    "person": "About: night-shift nurse who hikes\nSignature: one step at a time\nRecent Activities: a burnout post",
    "mbti": "INFJ", "emotion": "Anxious", "situation": "Waiting for the results of a licensing exam.",
    "anon_username": "user_0412",
    "messages": [
        {"role": "system", "content": "You are a caring assistant."},
        {"role": "user", "content": "I keep refreshing the results page."},
        {"role": "assistant", "content": _kardia_turn("anxious", "That waiting sounds exhausting.")},
        {"role": "user", "content": "It's been three days."},
        {"role": "assistant", "content": _kardia_turn("anxious", "Three days of limbo is a lot.", special=False)},
        {"role": "user", "content": "Maybe I'll take a walk."},
        {"role": "assistant", "content": "A walk sounds like a kind idea."},
    ],
}  # fmt: skip


def test_kardiabench_gives_one_row_per_assistant_turn(tmp_path):
    rows = _rows(_jsonl(tmp_path / "kardia.jsonl", [KARDIA_ROW]), "kardiabench", template="kardia")
    assert [row["turn"] for row in rows] == [1, 2, 3]
    assert [len(row["messages"]) for row in rows] == [1, 3, 5]
    assert rows[2]["messages"][1:4] == [
        {"role": "assistant", "content": "That waiting sounds exhausting."},  # history keeps the response span only
        {"role": "user", "content": "It's been three days."},
        {"role": "assistant", "content": "Three days of limbo is a lot."},
    ]
    assert [row["reference"] for row in rows] == ["That waiting sounds exhausting.", "Three days of limbo is a lot.",
                                                  "A walk sounds like a kind idea."]  # fmt: skip
    assert rows[0]["completion"] == KARDIA_ROW["messages"][2]["content"]
    assert rows[1]["completion"] == _kardia_turn("anxious", "Three days of limbo is a lot.")  # tags -> special tokens
    assert rows[2]["completion"] is None
    assert {row["emotion"] for row in rows} == {"anxious"}
    assert len({row["group"] for row in rows}) == 1  # one dialogue's turns are held out together
    situation = "\nSituation: Waiting for the results of a licensing exam."
    assert rows[0]["persona"] == KARDIA_ROW["person"] + "\nMBTI: INFJ" + situation
    assert (rows[0]["mbti"], rows[0]["anon_username"]) == ("INFJ", "user_0412")
    kardia = get_template("kardia")
    assert [render_target(row, "empathy", "kardia") for row in rows[:2]] == [row["completion"] for row in rows[:2]]
    assert kardia.extract(render_target(rows[2], "empathy", "kardia"), "response") == "A walk sounds like a kind idea."
    prompt = _user(rows[1], "empathy", "kardia")
    assert "Speaker's persona: About: night-shift nurse" in prompt
    assert "Listener: That waiting sounds exhausting.\nSpeaker: It's been three days." in prompt
    no_messages = {key: value for key, value in KARDIA_ROW.items() if key != "messages"}
    _assert_names_missing_field(_jsonl(tmp_path / "bad.jsonl", [KARDIA_ROW, no_messages]), "kardiabench", 2, "messages")


# ---- pceb ----

PCEB_THEORY = [
    {"id": 1, "question": "情绪的基本成分包括（）。", "answer": "ABC\u2003",
     "options": {"A": "主观体验", "B": "外部表现", "C": "生理唤醒", "D": "固定不变"}, "analysis": "情绪由三种成分构成。"},
    {"id": 2, "question": "咨询关系的首要原则是（）。", "options": {"A": "保密", "B": "收费", "C": "说教", "D": "评判"},
     "answer": "A", "analysis": "保密是咨询关系的基础。"},
    {"id": 3, "question": "下列属于防御机制的有（）。", "options": {"A": "压抑", "C": "投射", "D": "升华"},
     "answer": "CD", "analysis": "投射与升华都是防御机制。"},
]  # fmt: skip
PCEB_CASE = {
    "id": 4, "identifier": "一", "general_info": "求助者：女性，28岁，职员。", "case_introduction": "近一个月失眠，担心工作出错。",
    "questions_and_answers": [
        {"question": "单选：1．该求助者的主要症状是（）。", "options": {"A": "失眠", "B": "幻觉", "C": "妄想", "D": "木僵"},
         "answer": "A", "analysis": "主诉为失眠。"},
        {"question": "多选：2．可以采用的方法有（）。", "options": {"A": "放松训练", "B": "认知调整", "C": "电击", "D": "催眠"},
         "answer": "B", "analysis": "认知调整适用。"},
    ],
}  # fmt: skip


def test_pceb_theory_and_case_items_become_choice_rows(tmp_path):
    _json(tmp_path / "pceb" / "theory.json", PCEB_THEORY)
    _json(tmp_path / "pceb" / "cases.json", [PCEB_CASE])
    rows = {row["id"]: row for row in _rows(tmp_path / "pceb", "pceb")}
    assert list(rows) == ["4-1", "4-2", "1", "2", "3"]
    assert (rows["1"]["answer"], rows["1"]["multi_answer"]) == (["A", "B", "C"], True)  # the EM space is stripped
    assert (rows["2"]["answer"], rows["2"]["multi_answer"]) == (["A"], False)
    assert (rows["3"]["options"], rows["3"]["answer"]) == (["压抑", "投射", "升华"], ["B", "C"])  # re-lettered
    assert rows["1"]["rationale"] == "情绪由三种成分构成。" and rows["1"]["text"] is None
    assert [rows[key]["multi_answer"] for key in ("4-1", "4-2")] == [False, True]  # from the 单选/多选 prefix
    assert rows["4-1"]["text"] == "求助者：女性，28岁，职员。\n近一个月失眠，担心工作出错。"
    assert rows["4-1"]["identifier"] == "一"
    prompt = _user(rows["1"], "choice")
    assert "Question: 情绪的基本成分包括（）。\nOptions:\nA. 主观体验\nB. 外部表现\nC. 生理唤醒\nD. 固定不变\n" in prompt
    assert prompt.endswith("Answer with the letters of every correct option, e.g. A,C.")
    assert _user(rows["4-1"], "choice").startswith("求助者：女性，28岁，职员。")
    assert render_target(rows["1"], "choice", "r1") == "<think>情绪由三种成分构成。</think>\n<answer>A,B,C</answer>"


def test_pceb_bad_rows(tmp_path):
    no_answer = {key: value for key, value in PCEB_THEORY[1].items() if key != "answer"}
    _assert_names_missing_field(_json(tmp_path / "t.json", [PCEB_THEORY[0], no_answer]), "pceb", 2, "answer")
    essay = {"id": 9, "general_info": "求助者：男性。", "case_introduction": "情绪低落。",
             "questions_and_answers": [{"question": "请分析该求助者的问题。（10分）", "answer": "抑郁情绪。"}]}  # fmt: skip
    with pytest.raises(DataError, match=r"row 1: this case item has free-text \(essay\) answers"):
        _rows(_json(tmp_path / "essay.json", [essay]), "pceb")


# ---- emobench ----

EU_ROWS = [
    {"qid": "1", "language": "en", "coarse_category": "complex_emotions", "finegrained_category": "mixture_of_emotions",
     "scenario": "Lena wins a prize on the day her grandfather moves abroad.", "subject": "Lena",
     "emotion_choices": ["Joy & Sadness", "Anger", "Pride", "Fear", "Guilt", "Indifference"],
     "emotion_label": "Joy & Sadness",
     "cause_choices": ["She won but will miss him", "She lost the prize", "She dislikes travel", "He forgot her"],
     "cause_label": "She won but will miss him"},
    {"qid": "2", "language": "en", "coarse_category": "emotional_cues", "finegrained_category": "vocal_cues",
     "scenario": "Sam's voice cracks as he says he is fine.", "subject": "Sam",
     "emotion_choices": ["Calm", "Sadness", "Joy", "Anger", "Surprise", "Pride"], "emotion_label": "Sadness",
     "cause_choices": ["He hides his hurt", "He has a cold", "He is bored", "He won"],
     "cause_label": "He hides his hurt"},
    {"qid": "1", "language": "zh", "coarse_category": "complex_emotions", "finegrained_category": "mixture_of_emotions",
     "scenario": "小林获奖的那天，爷爷出国了。", "subject": "小林",
     "emotion_choices": ["喜悦 & 悲伤", "愤怒", "骄傲", "恐惧", "内疚", "冷漠"], "emotion_label": "喜悦 & 悲伤",
     "cause_choices": ["获奖但会想念爷爷", "没有获奖", "不喜欢旅行", "爷爷忘了她"], "cause_label": "获奖但会想念爷爷"},
]  # fmt: skip
EA_ROWS = [
    {"qid": "1", "language": "en", "category": "Personal-Self", "question type": "Response",
     "scenario": "Omar's friend mocks his accent in front of colleagues.", "subject": "Omar",
     "choices": ["Laugh it off", "Tell the friend privately it hurt", "Quit the job", "Mock him back"],
     "label": "Tell the friend privately it hurt"},
    {"qid": "1", "language": "zh", "category": "Personal-Self", "question type": "Response",
     "scenario": "朋友当众模仿小王的口音。", "subject": "小王",
     "choices": ["一笑了之", "私下告诉朋友自己受伤了", "辞职", "反过来嘲笑他"], "label": "私下告诉朋友自己受伤了"},
]  # fmt: skip


@pytest.mark.parametrize(("language", "eu_rows", "ea_rows"), [("en", 4, 1), ("zh", 2, 1), ("all", 6, 2)])
def test_emobench_language_filter(tmp_path, language, eu_rows, ea_rows):
    options = {"format_options": {"language": language}}
    assert len(_rows(_jsonl(tmp_path / "EU.jsonl", EU_ROWS), "emobench", **options)) == eu_rows
    assert len(_rows(_jsonl(tmp_path / "EA.jsonl", EA_ROWS), "emobench", **options)) == ea_rows


def test_emobench_eu_items_give_an_emotion_and_a_cause_row_and_ea_items_one(tmp_path):
    emotion, cause, *_ = _rows(_jsonl(tmp_path / "EU.jsonl", EU_ROWS), "emobench")
    assert (emotion["id"], emotion["eu_question"], cause["id"]) == ("EU-en-1-emotion", "emotion", "EU-en-1-cause")
    assert emotion["text"] == "Lena wins a prize on the day her grandfather moves abroad."
    assert emotion["question"] == "What emotion(s) would Lena ultimately feel in this situation?"
    assert cause["question"] == "Why would Lena feel these emotions in this situation?"
    assert (emotion["answer"], emotion["multi_answer"], emotion["options"][0]) == (["A"], False, "Joy & Sadness")
    assert cause["options"] == EU_ROWS[0]["cause_choices"] and cause["answer"] == ["A"]
    assert (emotion["dataset"], emotion["language"], emotion["qid"]) == ("EmoBench-EU", "en", "1")
    assert (emotion["coarse_category"], emotion["finegrained_category"]) == ("complex_emotions", "mixture_of_emotions")
    zh_emotion = _rows(_jsonl(tmp_path / "EU.jsonl", EU_ROWS), "emobench", format_options={"language": "zh"})[0]
    assert zh_emotion["question"] == "在这种情况下，小林最终会感受到什么情绪？" and zh_emotion["id"] == "EU-zh-1-emotion"
    action = _rows(_jsonl(tmp_path / "EA.jsonl", EA_ROWS), "emobench")[0]
    assert action["question"] == "In this scenario, what is the most effective Response for Omar?"
    assert (action["answer"], action["dataset"], action["category"], action["question_type"]) == (
        ["B"], "EmoBench-EA", "Personal-Self", "Response")  # fmt: skip
    prompt = _user(action, "choice")
    assert prompt.startswith("Omar's friend mocks his accent in front of colleagues.\nQuestion: In this scenario")
    assert "Options:\nA. Laugh it off\nB. Tell the friend privately it hurt\n" in prompt
    assert prompt.endswith("Answer with the letter of the correct option.")


def test_emobench_bad_rows_and_options(tmp_path):
    no_cause_label = {key: value for key, value in EU_ROWS[1].items() if key != "cause_label"}
    _assert_names_missing_field(_jsonl(tmp_path / "EU.jsonl", [EU_ROWS[0], no_cause_label]), "emobench", 2,
                                "cause_label")  # fmt: skip
    with pytest.raises(DataError, match=r"row 1: the EA label 'Run' is not one of its choices"):
        _rows(_jsonl(tmp_path / "EA.jsonl", [EA_ROWS[0] | {"label": "Run"}]), "emobench")
    with pytest.raises(ConfigError, match=r"language must be one of en, zh, all; got 'fr'"):
        _rows(_jsonl(tmp_path / "EA.jsonl", EA_ROWS), "emobench", format_options={"language": "fr"})
    with pytest.raises(ConfigError, match=r"format 'emobench' has no option 'lang'; accepted format_options: language"):
        _rows(_jsonl(tmp_path / "EA.jsonl", EA_ROWS), "emobench", format_options={"lang": "zh"})


# ---- mer_openset ----


def test_mer_openset_rows_are_emotion_rows_on_the_subtitle(tmp_path):
    path = _csv(tmp_path / "track2_train_human.csv", ["name", "openset", "chinese", "english", "reason"], [
        ["sample_00000001", "['relieved', 'grateful']", "终于结束了。", "Thank goodness, it's finally over.",
         "He exhales and smiles; his tone softens."],
        ["sample_00000002", "[]", "还行。", "", ""],
    ])  # fmt: skip
    first, second = _rows(path, "mer_openset")
    assert (first["id"], first["emotions"]) == ("sample_00000001", ["relieved", "grateful"])
    assert first["text"] == "Thank goodness, it's finally over."
    assert first["rationale"] == "He exhales and smiles; his tone softens." and first["context"] is None
    assert (second["emotions"], second["text"], second["rationale"]) == (["neutral"], "还行。", None)
    assert _user(first, "emotion").startswith("Situation: Thank goodness, it's finally over.")
    assert render_target(first, "emotion", "r1") == (
        "<think>He exhales and smiles; his tone softens.</think>\n<answer>relieved, grateful</answer>")
    described = _csv(tmp_path / "described.csv", ["name", "openset", "english", "description"], [
        ["sample_3", "['tense']", "Fine.", "Clenched jaw, clipped voice."],
        ["sample_4", "['calm']", "", "A soft smile."]])  # fmt: skip
    with_context, description_only = _rows(described, "mer_openset")
    assert (with_context["text"], with_context["context"]) == ("Fine.", "Clenched jaw, clipped voice.")
    assert (description_only["text"], description_only["context"]) == ("A soft smile.", None)


def test_mer_openset_bad_rows(tmp_path):
    _assert_names_missing_field(_csv(tmp_path / "no_openset.csv", ["name", "english"], [["sample_1", "Hi."]]),
                                "mer_openset", 2, "openset")  # fmt: skip
    with pytest.raises(DataError, match=r"row 3: no text: .*video is not supported here"):
        _rows(_csv(tmp_path / "labels_only.csv", ["name", "openset", "english"],
                   [["sample_1", "['calm']", "Hi."], ["sample_2", "['sad']", ""]]), "mer_openset")  # fmt: skip


# ---- goemotions ----

GOEMOTIONS_NAMES = [
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
]  # fmt: skip
GOEMOTIONS_TSV = ("Thanks so much, [NAME], that really made my day!\t15,17\tabc1xyz\n"
                  "I have no idea what you mean.\t6\tdef2uvw\n"
                  "ok then\t27\tghi3rst\n")  # fmt: skip


def test_goemotions_headerless_tsv_and_hub_rows_become_emotion_rows(tmp_path):
    (tmp_path / "train.tsv").write_text(GOEMOTIONS_TSV, encoding="utf-8")
    rows = _rows(tmp_path / "train.tsv", "goemotions")
    assert [row["emotions"] for row in rows] == [["gratitude", "joy"], ["confusion"], ["neutral"]]
    assert [row["id"] for row in rows] == ["abc1xyz", "def2uvw", "ghi3rst"]
    assert rows[0]["text"] == "Thanks so much, [NAME], that really made my day!"
    hub_rows = [{"text": "Wow, thank you!", "labels": ["gratitude", "surprise"], "id": "h1"},
                {"text": "Meh.", "labels": [27], "id": "h2"}]  # fmt: skip
    assert [row["emotions"] for row in _rows(_jsonl(tmp_path / "hub.jsonl", hub_rows), "goemotions")] == [
        ["gratitude", "surprise"], ["neutral"]]  # fmt: skip


def test_goemotions_label_task_keeps_single_label_rows_with_the_28_names(tmp_path):
    (tmp_path / "test.tsv").write_text(GOEMOTIONS_TSV, encoding="utf-8")
    rows = _rows(tmp_path / "test.tsv", "goemotions", task="label")
    assert [(row["id"], row["label"]) for row in rows] == [("def2uvw", "confusion"), ("ghi3rst", "neutral")]
    assert rows[0]["labels"] == GOEMOTIONS_NAMES
    assert _user(rows[0], "label") == ("Text: I have no idea what you mean.\nWhich emotion does it express? "
                                       f"Answer with one of: {', '.join(GOEMOTIONS_NAMES)}.")


def test_goemotions_bad_rows(tmp_path):
    _assert_names_missing_field(_jsonl(tmp_path / "g.jsonl", [{"text": "Hi", "labels": [1], "id": "a"},
                                                              {"text": "Yo", "id": "b"}]), "goemotions", 2, "labels")
    with pytest.raises(DataError, match=r"row 1: label id 28 is outside GoEmotions' 0-27"):
        _rows(_jsonl(tmp_path / "ids.jsonl", [{"text": "Hi", "labels": [28], "id": "a"}]), "goemotions")
    raw = {"text": "Hi", "id": "a", "rater_id": 3, "example_very_unclear": False, "joy": 1}
    with pytest.raises(DataError, match=r"raw per-rater row"):
        _rows(_jsonl(tmp_path / "raw.jsonl", [raw]), "goemotions")


# ---- meld ----

MELD_HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
               "Episode", "StartTime", "EndTime"]  # fmt: skip


def test_meld_csvs_give_label_rows_with_the_official_splits(tmp_path):
    _csv(tmp_path / "meld" / "train_sent_emo.csv", MELD_HEADER, [
        [1, "Wait, you moved the couch again?", "Ross", "Surprise", "negative", 0, 0, 4, 12, "00:03:10,200",
         "00:03:12,950"],
        [2, "Yeah. Do you like it?", "Monica", "joy", "positive", 0, 1, 4, 12, "00:03:13,001", "00:03:14,420"],
    ], lineterminator="\r\n")  # fmt: skip
    _csv(tmp_path / "meld" / "dev_sent_emo.csv", MELD_HEADER, [
        [1, "No.", "Joey", "neutral", "neutral", 0, 0, 2, 3, "00:01:00,000", "00:01:01,000"]], lineterminator="\r\n")
    _csv(tmp_path / "meld" / "test_sent_emo.csv", MELD_HEADER, [
        [1, "I can’t believe it.", "Rachel", "sadness", "negative", 5, 2, 9, 1, "00:10:00,000", "00:10:02,000"]],
        lineterminator="\r\n")  # fmt: skip
    splits = load_splits(DataArguments(dataset=str(tmp_path / "meld"), format="meld"))
    train, test = splits["train"].to_list(), splits["test"].to_list()
    assert [row["text"] for row in train] == ["Ross: Wait, you moved the couch again?", "Monica: Yeah. Do you like it?"]
    assert [row["label"] for row in train] == ["surprise", "joy"]
    assert [(row["id"], row["dialogue_id"], row["utterance_id"]) for row in train] == [("dia0_utt0", 0, 0),
                                                                                       ("dia0_utt1", 0, 1)]
    assert (train[0]["sentiment"], train[0]["speaker"], train[0]["Season"]) == ("negative", "Ross", "4")
    assert train[0]["labels"] == ["neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust"]
    assert [(row["id"], row["text"], row["label"]) for row in test] == [("dia5_utt2", "Rachel: I can’t believe it.",
                                                                         "sadness")]  # fmt: skip
    assert _user(train[0], "label") == ("Text: Ross: Wait, you moved the couch again?\nWhich emotion does it express? "
                                        "Answer with one of: neutral, joy, sadness, anger, surprise, fear, disgust.")
    header = [column for column in MELD_HEADER if column != "Emotion"]
    _assert_names_missing_field(_csv(tmp_path / "bad.csv", header, [[1, "Hi.", "Ross", "neutral", 0, 0, 1, 1, "", ""]]),
                                "meld", 2, "Emotion")  # fmt: skip


# ---- empathetic_dialogues ----

ED_CSV = """conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags
hit:1_conv:2,1,nostalgic,I found my old school notebooks_comma_ full of doodles.,41,I found my old notebooks today_comma_ so many memories.,4|5|5_5|4|4,
hit:1_conv:2,2,nostalgic,I found my old school notebooks_comma_ full of doodles.,77,Oh nice! What kind of memories came back?,4|5|5_5|4|4,
hit:1_conv:2,3,nostalgic,I found my old school notebooks_comma_ full of doodles.,41,Mostly drawings of my teachers_comma_ haha.,4|5|5_5|4|4,
hit:1_conv:2,4,nostalgic,I found my old school notebooks_comma_ full of doodles.,77,"Ha! Sounds hilarious.",4|5|5_5|4|4,,one candidate|another
hit:3_conv:6,1,afraid,A storm knocked out our power last night.,12,The wind was so loud last night.,,
hit:3_conv:6,2,afraid,A storm knocked out our power last night.,30,That sounds scary. Are you all okay?,,
"""


def test_empathetic_dialogues_raw_csv_gives_one_row_per_listener_turn(tmp_path):
    (tmp_path / "valid.csv").write_text(ED_CSV, encoding="utf-8")
    rows = _rows(tmp_path / "valid.csv", "empathetic_dialogues")
    assert [row["id"] for row in rows] == ["hit:1_conv:2#2", "hit:1_conv:2#4", "hit:3_conv:6#2"]
    assert rows[1]["messages"] == [
        {"role": "user", "content": "I found my old notebooks today, so many memories."},
        {"role": "assistant", "content": "Oh nice! What kind of memories came back?"},
        {"role": "user", "content": "Mostly drawings of my teachers, haha."},
    ]
    assert [row["reference"] for row in rows] == ["Oh nice! What kind of memories came back?",
                                                  '"Ha! Sounds hilarious."',  # not CSV: quotes are text
                                                  "That sounds scary. Are you all okay?"]  # fmt: skip
    assert [row["emotion"] for row in rows] == ["nostalgic", "nostalgic", "afraid"]
    assert rows[0]["situation"] == "I found my old school notebooks, full of doodles."
    assert (rows[0]["speaker_idx"], rows[0]["selfeval"], rows[0]["conv_id"]) == ("77", "4|5|5_5|4|4", "hit:1_conv:2")
    prompt = _user(rows[1], "empathy")
    assert "Conversation:\nSpeaker: I found my old notebooks today, so many memories.\nListener: Oh nice!" in prompt
    assert "school notebooks" not in prompt  # the listener never saw the situation
    (tmp_path / "test.csv").write_text(ED_CSV.splitlines()[0] + "\nhit:1_conv:1,1,sad,A bad day.,5\n")
    with pytest.raises(DataError, match=r"test.csv, line 2: 5 comma-separated fields; an EmpatheticDialogues line"):
        _rows(tmp_path / "test.csv", "empathetic_dialogues")


def test_empathetic_dialogues_hub_rows_group_by_conversation_in_any_order(tmp_path):
    hub_rows = [
        {"conv_id": "c1", "utterance_idx": 2, "context": "proud", "prompt": "I ran a marathon.", "speaker_idx": 2,
         "utterance": "Wow_comma_ congratulations!", "selfeval": "", "tags": ""},
        {"conv_id": "c1", "utterance_idx": 1, "context": "proud", "prompt": "I ran a marathon.", "speaker_idx": 1,
         "utterance": "I finished my first marathon.", "selfeval": "", "tags": ""},
    ]  # fmt: skip
    (row,) = _rows(_jsonl(tmp_path / "ed.jsonl", hub_rows), "empathetic_dialogues")
    assert row["messages"] == [{"role": "user", "content": "I finished my first marathon."}]
    assert (row["reference"], row["emotion"], row["id"]) == ("Wow, congratulations!", "proud", "c1#2")
    no_utterance = {key: value for key, value in hub_rows[1].items() if key != "utterance"}
    _assert_names_missing_field(_jsonl(tmp_path / "bad.jsonl", [hub_rows[0], no_utterance]), "empathetic_dialogues",
                                1, "utterance")  # fmt: skip


# ---- esconv ----

ESCONV_ROW = {
    "experience_type": "Current Experience", "emotion_type": "anxiety", "problem_type": "job crisis",
    "situation": "My contract ends next month and I have no offers yet.",
    "survey_score": {"seeker": {"initial_emotion_intensity": "4", "empathy": "5", "relevance": "4",
                                "final_emotion_intensity": "2"}, "supporter": {"relevance": "4"}},
    "dialog": [
        {"speaker": "supporter", "annotation": {"strategy": "Question"}, "content": "Hello, how are you today?"},
        {"speaker": "seeker", "annotation": {}, "content": "Hi, I'm pretty stressed about work.\n"},
        {"speaker": "supporter", "annotation": {"strategy": "Question"}, "content": "I'm sorry. What is going on?"},
        {"speaker": "supporter", "annotation": {"strategy": "Affirmation and Reassurance"},
         "content": "Take your time."},
        {"speaker": "seeker", "annotation": {"feedback": "5"}, "content": "My contract is ending."},
        {"speaker": "supporter", "annotation": {"strategy": "Reflection of feelings"},
         "content": "That uncertainty sounds really worrying."},
    ],
    "seeker_question1": "It helped.", "seeker_question2": "", "supporter_question1": "", "supporter_question2": "",
}  # fmt: skip


def test_esconv_gives_one_row_per_supporter_turn_after_the_seeker_speaks(tmp_path):
    rows = _rows(_json(tmp_path / "ESConv.json", [ESCONV_ROW]), "esconv")
    assert [row["turn"] for row in rows] == [2, 3, 4]  # the opening greeting answers nothing
    assert [row["strategy"] for row in rows] == ["Question", "Affirmation and Reassurance", "Reflection of feelings"]
    assert [row["reference"] for row in rows] == ["I'm sorry. What is going on?", "Take your time.",
                                                  "That uncertainty sounds really worrying."]  # fmt: skip
    assert rows[2]["messages"] == [
        {"role": "assistant", "content": "Hello, how are you today?"},
        {"role": "user", "content": "Hi, I'm pretty stressed about work."},
        {"role": "assistant", "content": "I'm sorry. What is going on?"},
        {"role": "assistant", "content": "Take your time."},
        {"role": "user", "content": "My contract is ending."},
    ]
    assert {row["emotion"] for row in rows} == {"anxiety"}
    assert len({row["group"] for row in rows}) == 1
    assert rows[0]["persona"] == "Problem: job crisis. My contract ends next month and I have no offers yet."
    assert (rows[0]["problem_type"], rows[0]["experience_type"]) == ("job crisis", "Current Experience")
    assert not {"survey_score", "dialog", "seeker_question1"} & set(rows[0])
    assert _user(rows[0], "empathy").startswith("Speaker's persona: Problem: job crisis.")
    assert render_target(rows[0], "empathy", "kardia").endswith("<|response_begin|>I'm sorry. What is going on?"
                                                                "<|response_end|>")  # fmt: skip
    no_dialog = {key: value for key, value in ESCONV_ROW.items() if key != "dialog"}
    _assert_names_missing_field(_json(tmp_path / "bad.json", [ESCONV_ROW, no_dialog]), "esconv", 2, "dialog")


# ---- the command line ----

EXPECTED_TASKS = {
    "r1_omni": "label", "humanomni_v2": "choice", "fea20k": "facial", "emocaliber": "label",
    "kardiabench": "empathy", "pceb": "choice", "emobench": "choice", "mer_openset": "emotion",
    "goemotions": "emotion (or label)", "meld": "label", "empathetic_dialogues": "empathy", "esconv": "empathy",
}  # fmt: skip


def test_data_formats_lists_the_twelve_formats_with_their_tasks(capsys):
    assert set(formats()) == set(EXPECTED_TASKS)
    assert main(["data", "formats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, task in EXPECTED_TASKS.items():
        assert any(line.split() == [name, "task", *task.split()] for line in lines), name


def test_data_inspect_of_an_adapter_file_exits_0_and_of_a_broken_file_2(tmp_path, capsys):
    good = _json(tmp_path / "theory.json", PCEB_THEORY)
    assert main(["data", "inspect", "--data", str(good), "--format", "pceb"]) == 0
    out = capsys.readouterr().out
    assert "split (none): 3 rows" in out and "A. 主观体验" in out and "problems: none" in out
    broken = _json(tmp_path / "broken.json", [PCEB_THEORY[0], {"id": 5, "question": "？", "options": {"A": "是"}}])
    assert main(["data", "inspect", "--data", str(broken), "--format", "pceb"]) == 2
    error = capsys.readouterr().err
    assert "broken.json, row 2" in error and "'answer'" in error
