"""Rows rendered into prompts and targets (golden strings), own completions, and the SFT / GRPO datasets."""

import re

import pytest
from datasets import Dataset
from trl.data_utils import is_conversational

from affect_rl.data import (
    DataArguments,
    render_prompt,
    render_system_prompt,
    render_target,
    to_grpo_dataset,
    to_sft_dataset,
    validate_rows,
)
from affect_rl.errors import ConfigError, DataError
from rewards.templates import TEMPLATES, get_template

ROWS = {
    "emotion": {
        "id": "e1",
        "text": "My sister got the job she wanted for years.",
        "emotions": ["happy", "proud"],
        "context": "We grew up poor.",
    },
    "facial": {
        "id": "f1",
        "description": "Cheeks raised, lip corners pulled up.",
        "aus": [6, 12, 25],
        "emotion": "happiness",
    },
    "empathy": {
        "id": "p1",
        "messages": [
            {"role": "user", "content": "I failed my driving test again."},
            {"role": "assistant", "content": "Oh no."},
            {"role": "user", "content": "I feel stupid."},
        ],
        "persona": "A 17-year-old student.",
        "emotion": "ashamed",
        "reference": "That sounds really discouraging.",
    },
    "label": {"id": "l1", "text": "I finally paid off the loan.", "label": "relief"},
    "choice": {
        "id": "c1",
        "text": "Ana's dog ran away during the storm.",
        "question": "What does Ana feel?",
        "options": ["worry", "pride", "sadness", "joy"],
        "answer": "A,C",
    },
}

R1_SYSTEM_LIST = (
    "Think briefly, then answer in this format:\n<think>your reasoning</think>\n<answer>word1, word2</answer>"
)
R1_SYSTEM_LABEL = (
    "Think briefly, then answer with one emotion label in this format:\n"
    "<think>your reasoning</think>\n<answer>label</answer>"
)
FACIAL_COT_SYSTEM = (
    "You are a facial expression analyst. Use exactly this format:\n"
    '<think>Key observations: each active AU as "AU12 (lip corner puller)" and the emotion it signals.\n'
    "Overall interpretation: how they combine.\nConclusion: the emotion.</think>\n<answer>label</answer>"
)
KARDIA_SYSTEM = (
    "You are an empathetic listener. Use exactly this format:\n"
    "<|understanding_begin|>what the speaker feels and why<|understanding_end|>\n"
    "<|reasoning_begin|>how to respond<|reasoning_end|>\n<|emotion_begin|>label<|emotion_end|>\n"
    "<|response_begin|>your reply<|response_end|>"
)
CALIBRATED_SYSTEM = (
    "You are an emotion reasoning assistant. Think briefly, answer with one emotion label, then give your "
    "confidence (0 to 1) that it is right. Use exactly this format:\n"
    "<think>your reasoning</think>\n<answer>label</answer>\n<confidence>0.85</confidence>"
)
EMOTION_USER = (
    "Context: We grew up poor.\nSituation: My sister got the job she wanted for years.\n"
    "Which emotions does the person feel? List 1-3 emotion words."
)
FACIAL_USER = (
    "Face: Cheeks raised, lip corners pulled up.\n"
    "Which facial Action Units are active (e.g. AU12) and which emotion do they show?"
)
EMPATHY_CONVERSATION = (
    "Speaker's persona: A 17-year-old student.\nConversation:\nSpeaker: I failed my driving test again.\n"
    "Listener: Oh no.\nSpeaker: I feel stupid.\n"
)
FACIAL_OBSERVATIONS = (
    "AU6 (cheek raiser) signals happiness; AU12 (lip corner puller) signals happiness and contempt; "
    "AU25 (lips part) signals no single emotion."
)
FACIAL_PROTOTYPE = "Together they form the EMFACS happiness prototype (AU6+AU12)."

LABEL_USER = "Text: I finally paid off the loan.\nWhich emotion does it express?"
CHOICE_USER = (
    "Ana's dog ran away during the storm.\nQuestion: What does Ana feel?\nOptions:\nA. worry\nB. pride\n"
    "C. sadness\nD. joy\nAnswer with the letters of every correct option, e.g. A,C."
)
CHOICE_SYSTEM = (
    "Think briefly, then answer with the letter(s) of the correct option(s) in this format:\n"
    "<think>your reasoning</think>\n<answer>B</answer>"
)

GOLDEN = {
    ("r1", "emotion"): (
        R1_SYSTEM_LIST,
        EMOTION_USER,
        "<think>The situation suggests the person feels happy and proud.</think>\n<answer>happy, proud</answer>",
    ),
    ("r1", "facial"): (
        R1_SYSTEM_LABEL,
        FACIAL_USER,
        f"<think>{FACIAL_OBSERVATIONS} {FACIAL_PROTOTYPE}</think>\n<answer>happiness</answer>",
    ),
    ("r1", "empathy"): (
        R1_SYSTEM_LABEL,
        EMPATHY_CONVERSATION + "Name the speaker's emotion.",
        "<think>The speaker feels ashamed. Persona: A 17-year-old student.</think>\n<answer>ashamed</answer>",
    ),
    ("facial_cot", "facial"): (
        FACIAL_COT_SYSTEM,
        FACIAL_USER,
        f"<think>Key observations: {FACIAL_OBSERVATIONS}\nOverall interpretation: {FACIAL_PROTOTYPE}\n"
        "Conclusion: the face shows happiness.</think>\n<answer>happiness</answer>",
    ),
    ("kardia", "empathy"): (
        KARDIA_SYSTEM,
        EMPATHY_CONVERSATION + "Name the speaker's emotion and write a supportive reply.",
        "<|understanding_begin|>The speaker feels ashamed. Persona: A 17-year-old student.<|understanding_end|>\n"
        "<|reasoning_begin|>A good reply acknowledges that they feel ashamed, shows understanding that fits their "
        "persona and offers support.<|reasoning_end|>\n<|emotion_begin|>ashamed<|emotion_end|>\n"
        "<|response_begin|>That sounds really discouraging.<|response_end|>",
    ),
    ("calibrated", "facial"): (
        CALIBRATED_SYSTEM,
        FACIAL_USER,
        f"<think>{FACIAL_OBSERVATIONS} {FACIAL_PROTOTYPE}</think>\n<answer>happiness</answer>\n"
        "<confidence>0.90</confidence>",
    ),
    ("r1", "label"): (
        R1_SYSTEM_LABEL,
        LABEL_USER,
        "<think>The cues point to relief.</think>\n<answer>relief</answer>",
    ),
    ("r1", "choice"): (
        CHOICE_SYSTEM,
        CHOICE_USER,
        "<think>Options A and C (worry and sadness) fit.</think>\n<answer>A,C</answer>",
    ),
    ("humanomni", "choice"): (
        "First summarise the context that matters, then reason, then answer with the letter(s) of the correct "
        "option(s). Use exactly this format:\n<context>the relevant context</context>\n<think>your reasoning</think>"
        "\n<answer>B</answer>",
        CHOICE_USER,
        "<context>Ana's dog ran away during the storm.</context>\n<think>Options A and C (worry and sadness) fit."
        "</think>\n<answer>A,C</answer>",
    ),
    ("calibrated", "empathy"): (
        CALIBRATED_SYSTEM,
        EMPATHY_CONVERSATION + "Name the speaker's emotion.",
        "<think>The speaker feels ashamed. Persona: A 17-year-old student.</think>\n<answer>ashamed</answer>\n"
        "<confidence>0.90</confidence>",
    ),
}


RENDERED_FROM_LABELS = [(name, task) for name, spec in TEMPLATES.items() for task in spec.tasks if name != "emocaliber"]


@pytest.mark.parametrize("template, task", RENDERED_FROM_LABELS)
def test_every_template_and_task_pair_renders_a_target_its_template_accepts(template, task):
    row = validate_rows([ROWS[task]], task, "rows")[0]
    spec = get_template(template)
    assert spec.matches(render_target(row, task, template))
    system = render_system_prompt(task, template)
    assert all(marker in system for marker in spec.markers)


@pytest.mark.parametrize("template, task", sorted(GOLDEN))
def test_prompt_and_target_match_golden_strings(template, task):
    system, user, target = GOLDEN[(template, task)]
    row = validate_rows([ROWS[task]], task, "golden")[0]
    assert render_prompt(row, task, template) == [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]
    assert render_target(row, task, template) == target


R1_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)  # R1-Omni's format reward


@pytest.mark.parametrize(
    "template, tags, target_pattern",
    [
        ("r1", ["<think>", "</think>", "<answer>", "</answer>"], R1_FORMAT),
        (
            "facial_cot",
            ["<think>", "Key observations:", "Overall interpretation:", "Conclusion:", "<answer>"],
            re.compile(
                r"<think>Key observations: .+\nOverall interpretation: .+\nConclusion: .+</think>\n<answer>.+</answer>"
            ),
        ),
        (
            "kardia",
            ["<|understanding_begin|>", "<|reasoning_begin|>", "<|emotion_begin|>", "<|response_begin|>",
             "<|response_end|>"],
            re.compile(
                r"<\|understanding_begin\|>.+<\|understanding_end\|>\n<\|reasoning_begin\|>.+<\|reasoning_end\|>\n"
                r"<\|emotion_begin\|>.+<\|emotion_end\|>\n<\|response_begin\|>.+<\|response_end\|>"
            ),
        ),
        (
            "calibrated",
            ["<think>", "<answer>", "<confidence>", "</confidence>"],
            re.compile(r"<think>.+</think>\n<answer>.+</answer>\n<confidence>0\.\d+</confidence>"),
        ),
    ],
)
def test_system_prompts_state_the_tags_their_targets_use(template, tags, target_pattern):
    for task in get_template(template).tasks:
        system = render_system_prompt(task, template)
        assert [tag for tag in tags if tag not in system] == []
        row = validate_rows([ROWS[task]], task, "rows")[0]
        assert target_pattern.fullmatch(render_target(row, task, template))


def test_rationale_replaces_the_built_reasoning():
    emotion_row = ROWS["emotion"] | {"rationale": "Her long effort finally paid off."}
    assert render_target(emotion_row, "emotion", "r1") == (
        "<think>Her long effort finally paid off.</think>\n<answer>happy, proud</answer>"
    )
    facial_row = ROWS["facial"] | {"rationale": "A genuine Duchenne smile."}
    assert render_target(facial_row, "facial", "facial_cot").split("\n")[1] == (
        "Overall interpretation: A genuine Duchenne smile."
    )


@pytest.mark.parametrize(
    "aus, emotion, expected_think",
    [
        (
            [1, 4],
            "sadness",
            "AU1 (inner brow raiser) signals sadness, surprise and fear; AU4 (brow lowerer) signals sadness, fear "
            "and anger. They cover 2 of the 3 AUs of the EMFACS sadness prototype (AU1+AU4+AU15).",
        ),
        ([], "neutral", "No action unit is active. These cues fit no EMFACS prototype; the face reads as neutral."),
        (
            [9, 28],
            "happiness",
            "AU9 (nose wrinkler) signals disgust; AU28 signals no single emotion. They share no AU with the EMFACS "
            "happiness prototype (AU6+AU12), yet the face reads as happiness.",
        ),
    ],
)
def test_facial_reasoning_from_action_unit_table(aus, emotion, expected_think):
    target = render_target({"description": "a face", "aus": aus, "emotion": emotion}, "facial", "r1")
    assert target == f"<think>{expected_think}</think>\n<answer>{emotion}</answer>"


def test_calibrated_target_uses_the_row_confidence():
    row = ROWS["facial"] | {"confidence": 0.625}
    assert render_target(row, "facial", "calibrated").endswith("<confidence>0.62</confidence>")


def test_system_prompt_override_and_template_mismatch():
    messages = render_prompt(ROWS["emotion"], "emotion", "r1", system_prompt="Be brief.")
    assert messages[0] == {"role": "system", "content": "Be brief."}
    with pytest.raises(ConfigError, match="template 'kardia' does not fit task 'emotion'"):
        render_prompt(ROWS["emotion"], "emotion", "kardia")


def args(task: str, template: str = "r1", **options) -> DataArguments:
    return DataArguments(dataset="rows.jsonl", task=task, template=template, **options)


def test_rows_that_cannot_be_rendered_are_named():
    no_reference = Dataset.from_list([ROWS["empathy"] | {"reference": None}])
    with pytest.raises(DataError, match=r"row id 'p1': the kardia template's response span needs the row's 'reference'"):
        to_sft_dataset(no_reference, args("empathy", "kardia"))
    nothing_to_show = {"aus": [6, 12], "emotion": "happiness", "description": None}
    with pytest.raises(DataError, match=r"row 1: a facial row without a 'description' or an image has nothing to show"):
        to_grpo_dataset(Dataset.from_list([nothing_to_show]), args("facial"))


def test_sft_dataset_is_conversational_prompt_completion():
    rows = validate_rows([ROWS["emotion"], ROWS["emotion"] | {"id": "e2"}], "emotion", "rows")
    sft = to_sft_dataset(Dataset.from_list(rows), args("emotion", system_prompt="S"))
    assert sft.column_names == ["prompt", "completion"]
    assert is_conversational(sft[0])
    assert [message["role"] for message in sft[0]["prompt"]] == ["system", "user"]
    assert sft[0]["completion"] == [{"role": "assistant", "content": GOLDEN[("r1", "emotion")][2]}]


@pytest.mark.parametrize("task", sorted(ROWS))
def test_grpo_dataset_keeps_every_column_for_the_rewards(task):
    rows = validate_rows([ROWS[task] | {"problem_type": "multiple choice"}], task, "rows")
    grpo = to_grpo_dataset(Dataset.from_list(rows), args(task))
    passed = {column: value for column, value in rows[0].items() if column != "completion"}  # TRL's own name
    assert set(grpo.column_names) == {"prompt", *passed}
    assert grpo[0]["prompt"] == render_prompt(rows[0], task, "r1")
    assert {column: grpo[0][column] for column in passed} == passed


OWN = "<think>Paying it off lifts a weight.</think>\n<answer>relief</answer>"


def test_a_rows_own_completion_is_the_sft_target_once_it_matches_the_template():
    rows = validate_rows([ROWS["label"] | {"completion": OWN}, ROWS["label"] | {"id": "l2"}], "label", "rows")
    sft = to_sft_dataset(Dataset.from_list(rows), args("label"))
    assert sft[0]["completion"][0]["content"] == OWN
    assert sft[1]["completion"][0]["content"] == "<think>The cues point to relief.</think>\n<answer>relief</answer>"


def test_completions_off_the_template_are_named_or_skipped_and_counted():
    bad = ROWS["label"] | {"id": "l9", "completion": "relief, obviously"}
    rows = Dataset.from_list(validate_rows([ROWS["label"] | {"completion": OWN}, bad], "label", "rows"))
    with pytest.raises(DataError, match=r"row id 'l9': its completion does not match the r1 template \(think then answer\)"):
        to_sft_dataset(rows, args("label"))
    report = {}
    sft = to_sft_dataset(rows, args("label", invalid_completions="skip"), report)
    assert len(sft) == 1 and report["skipped"] == ["row id 'l9'"]


def test_emocaliber_targets_come_from_the_rows_own_completion():
    own = ("<think><element>a card</element><human>a smile</human><context>a party</context><interaction>a hug"
           "</interaction><analysis>warmth</analysis></think><answer>joy</answer><confidence>0.8</confidence>")
    row = validate_rows([{"text": "t", "label": "joy", "completion": own}], "label", "rows")[0]
    assert render_target(row, "label", "emocaliber") == own
    with pytest.raises(DataError, match="the emocaliber template's sub-tags need the row's own completion"):
        render_target(row | {"completion": None}, "label", "emocaliber")
    missing_part = own.replace("<human>a smile</human>", "")
    with pytest.raises(DataError, match="reasoning holding element, human, context, interaction, analysis"):
        render_target(row | {"completion": missing_part}, "label", "emocaliber")


def test_label_prompts_name_the_closed_label_set_and_the_rows_own_question():
    row = validate_rows([ROWS["label"] | {"question": "How does the writer feel?"}], "label", "rows")[0]
    user = render_prompt(row, "label", "r1", label_set=["relief", "anger"])[1]["content"]
    assert user == "Text: I finally paid off the loan.\nHow does the writer feel? Answer with one of: relief, anger."
    row_set = row | {"labels": ["relief", "fear"]}
    assert render_prompt(row_set, "label", "r1", label_set=["x"])[1]["content"].endswith("one of: relief, fear.")
