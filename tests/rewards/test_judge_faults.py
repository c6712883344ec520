"""The rubric judge under faults (issue 15, item 3), against a scripted judge on 127.0.0.1.

Every failure mode honours ``on_error`` (skip -> None, zero -> 0.0, raise -> JudgeError naming
the server); failed, empty and truncated answers are never cached; the cache key covers the whole
request and the model the server reports; a broken cache file warns once and training goes on
in memory; ``max_failure_rate`` stops training whatever ``on_error`` says.
"""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest
from judge_fakes import ALL_FOURS, Reply, build, fake_judge, kardia  # noqa: F401

from rewards.errors import ConfigError, JudgeError
from rewards.judge_cache import JudgeCache, cache_key

POLICIES = [("skip", None), ("zero", 0.0), ("raise", JudgeError)]


def deeply_nested_list(depth: int = 100_000) -> list:
    nested: list = []
    for _ in range(depth):
        nested = [nested]
    return nested


def check_policy(reward, policy, expected, call, message: str):
    """``call(reward)`` gives ``expected`` per sample, or raises a JudgeError holding ``message`` and the URL."""
    if expected is JudgeError:
        with pytest.raises(JudgeError) as caught:
            call(reward)
        assert message in str(caught.value) and reward.client.base_url in str(caught.value)
    else:
        assert call(reward) == [expected]
        assert message in reward.last_batch[0].error


# ── The cache key ──

BODY = {
    "model": "judge",
    "messages": [{"role": "system", "content": "Grade."}, {"role": "user", "content": "Reply: sorry."}],
    "temperature": 0.0,
    "max_tokens": 256,
}


@pytest.mark.parametrize(
    "changed",
    [
        {**BODY, "messages": [BODY["messages"][0], {"role": "user", "content": "Reply: so sorry."}]},  # the prompt
        {**BODY, "messages": [{"role": "system", "content": "Grade kindly."}, BODY["messages"][1]]},  # the rubric
        {**BODY, "temperature": 0.7},
        {**BODY, "max_tokens": 64},
        {**BODY, "top_p": 0.9},  # any other sampling field
    ],
)
def test_the_cache_key_covers_every_request_parameter(changed):
    assert cache_key("org/weights", changed) != cache_key("org/weights", BODY)


def test_the_cache_key_follows_the_served_weights_not_the_alias():
    assert cache_key("org/weights-v2", BODY) != cache_key("org/weights-v1", BODY)
    assert cache_key("org/weights", {**BODY, "model": "alias"}) == cache_key("org/weights", BODY)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"prompt": "user: my dog died"}, {"prompt": "user: I won the lottery"}),
        ({"options": {"temperature": 0.0}}, {"options": {"temperature": 0.5}}),
        ({"options": {"max_tokens": 256}}, {"options": {"max_tokens": 100}}),
        ({"root": "org/judge-v1"}, {"root": "org/judge-v2"}),  # the server now serves other weights
    ],
)
def test_a_changed_request_or_model_is_not_served_from_the_cache(fake_judge, tmp_path, first, second):
    listing = {"data": [{"id": "fake", "root": first.get("root", "org/judge-v1")}]}
    judge = fake_judge(lambda body: (200, ALL_FOURS), models=listing)
    path = str(tmp_path / "cache.sqlite")
    build(judge, cache=path, **first.get("options", {})).call_sync([first.get("prompt", "p")], [kardia("Sorry.")])
    listing["data"][0]["root"] = second.get("root", "org/judge-v1")
    again = build(judge, cache=path, **second.get("options", {}))
    assert again.call_sync([second.get("prompt", "p")], [kardia("Sorry.")]) == [0.75]
    assert len(judge.bodies) == 2 and again.stats.cache_hits == 0
    # The same request again is served by the cache.
    assert build(judge, cache=path, **second.get("options", {})).call_sync([second.get("prompt", "p")],
                                                                           [kardia("Sorry.")]) == [0.75]  # fmt: skip
    assert len(judge.bodies) == 2


# ── Failure modes, each under every on_error policy ──


@pytest.mark.parametrize(("policy", "expected"), POLICIES)
def test_connection_refused(fake_judge, policy, expected):
    judge = fake_judge(lambda body: (200, ALL_FOURS))
    judge.close()  # nothing listens on its port any more
    reward = build(judge, on_error=policy, max_retries=1)
    check_policy(reward, policy, expected, lambda r: r.call_sync(["p"], [kardia("Sorry.")]), "ConnectError")


@pytest.mark.parametrize(("policy", "expected"), POLICIES)
def test_timeouts(fake_judge, policy, expected):
    judge = fake_judge(lambda body: Reply(content=ALL_FOURS, delay=1.0))
    reward = build(judge, on_error=policy, timeout=0.2, max_retries=1)
    started = time.perf_counter()
    check_policy(reward, policy, expected, lambda r: r.call_sync(["p"], [kardia("Sorry.")]), "ReadTimeout")
    assert len(judge.bodies) == 2 and time.perf_counter() - started < 5


@pytest.mark.parametrize(("policy", "expected"), POLICIES)
@pytest.mark.parametrize(
    "listing", [b"<html>502 Bad Gateway</html>", {"data": "fake"}, [1, 2], {"data": [{"name": "fake"}]}, b"[" * 100_000]
)
def test_a_garbage_models_answer(fake_judge, policy, expected, listing):
    judge = fake_judge(lambda body: (200, ALL_FOURS), models=listing)
    reward = build(judge, on_error=policy)
    check_policy(reward, policy, expected, lambda r: r.call_sync(["p"], [kardia("Sorry.")]),
                 "is not an OpenAI model list")  # fmt: skip
    assert judge.bodies == []


@pytest.mark.parametrize(("policy", "expected"), POLICIES)
@pytest.mark.parametrize(
    "raw",
    [
        b"<html>502 Bad Gateway</html>",  # not JSON
        b"[1, 2]",
        b'{"choices": []}',
        b'{"choices": [{"text": "4"}]}',  # a completions (not chat) answer
        b'{"choices": [{"message": {"content": {"relevance": 4}}}]}',  # content not a string
        b'{"choices": [' * 50_000,  # nested past the recursion limit
    ],
)
def test_a_wrong_shaped_completion_answer(fake_judge, policy, expected, raw):
    judge = fake_judge(lambda body: Reply(raw=raw))
    reward = build(judge, on_error=policy)
    check_policy(reward, policy, expected, lambda r: r.call_sync(["p"], [kardia("Sorry.")]), "not a chat completion")
    assert len(judge.bodies) == 1  # a malformed answer is not retried


@pytest.mark.parametrize(("policy", "expected"), POLICIES)
def test_deeply_nested_policy_input(fake_judge, policy, expected):
    judge = fake_judge(lambda body: (200, ALL_FOURS))
    reward = build(judge, on_error=policy)
    check_policy(reward, policy, expected, lambda r: r.call_sync(["p"], [deeply_nested_list()]), "nested too deeply")
    nested_persona = [deeply_nested_list()]
    check_policy(reward, policy, expected, lambda r: r.call_sync(["p"], [kardia("Hi.")], persona=nested_persona),
                 "nested too deeply")  # fmt: skip
    assert judge.bodies == []


def test_deeply_nested_json_in_the_policy_text_neither_crashes_nor_stalls(fake_judge, monkeypatch):
    import rewards.rubric_verdict as verdict

    decoded = []
    decode = verdict._DECODER.raw_decode
    monkeypatch.setattr(verdict._DECODER, "raw_decode", lambda text: decoded.append(len(text)) or decode(text))
    judge = fake_judge(lambda body: (200, ALL_FOURS))
    reward = build(judge, on_error="raise")
    hostile = '{"a": ' * 100_000 + '[' * 100_000
    assert reward.call_sync(["p"], [kardia(hostile)]) == [0.75]
    # One linear scan: the 100,000 unclosed braces are never decoded, only the judge's one verdict.
    assert len(decoded) == 1


def test_lone_surrogates_in_the_policy_text_are_sent_and_cached(fake_judge, tmp_path):
    judge = fake_judge(lambda body: (200, ALL_FOURS))
    reward = build(judge, cache=str(tmp_path / "cache.sqlite"), on_error="raise")
    assert reward.call_sync(["p\ud800"], [kardia("Sorry \udcff.")]) == [0.75]
    assert "Sorry ?." in judge.bodies[0]["messages"][1]["content"]


# ── The cache file ──


def test_a_corrupt_cache_file_warns_once_and_the_run_goes_on_in_memory(fake_judge, tmp_path, caplog):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    judge = fake_judge(lambda body: (200, ALL_FOURS))
    with caplog.at_level(logging.WARNING, logger="rewards.judge_cache"):
        reward = build(judge, cache=str(path), on_error="raise")
        assert reward.call_sync(["p"], [kardia("Sorry.")]) == [0.75]
        assert reward.call_sync(["p"], [kardia("Sorry.")]) == [0.75]
    warnings = [record.getMessage() for record in caplog.records if record.name == "rewards.judge_cache"]
    assert len(warnings) == 1 and str(path) in warnings[0] and "in-memory" in warnings[0]
    assert len(judge.bodies) == 1 and reward.stats.cache_hits == 1  # the memory cache served the repeat


def test_a_locked_cache_file_warns_once_and_the_cache_goes_on_in_memory(tmp_path, caplog):
    path = tmp_path / "cache.sqlite"
    JudgeCache(path).put_many({"old": "answer"})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another rank holds the file past our timeout
    try:
        with caplog.at_level(logging.WARNING, logger="rewards.judge_cache"):
            cache = JudgeCache(path, timeout=0.1)
            assert cache.get_many(["old", "new"]) == {}
            cache.put_many({"new": "verdict"})
            assert cache.get_many(["new"]) == {"new": "verdict"}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    warnings = [record.getMessage() for record in caplog.records if record.name == "rewards.judge_cache"]
    assert len(warnings) == 1 and "OperationalError" in warnings[0] and "locked" in warnings[0]


def test_an_unwritable_cache_folder_warns_and_goes_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="rewards.judge_cache"):
        cache = JudgeCache(blocker / "sub" / "cache.sqlite")
        cache.put_many({"k": "v"})
    assert cache.get_many(["k"]) == {"k": "v"} and cache.path is None
    assert len([r for r in caplog.records if r.name == "rewards.judge_cache"]) == 1


# ── max_failure_rate and health ──


def test_a_dead_judge_stops_training_even_under_skip(fake_judge):
    judge = fake_judge(lambda body: (200, ALL_FOURS))
    judge.close()
    reward = build(judge, on_error="skip", max_retries=0, failure_window=4, max_failure_rate=0.5)
    metrics = {}
    assert reward.call_sync(["p"] * 2, [kardia("a"), kardia("b")], log_metric=metrics.__setitem__) == [None, None]
    assert metrics["judge/empathy/server_up"] == 0.0
    with pytest.raises(JudgeError) as caught:
        reward.call_sync(["p"] * 2, [kardia("c"), kardia("d")])
    message = str(caught.value)
    assert judge.url in message and "failed on 4 of the last 4 requests (100%" in message
    assert "max_failure_rate 0.5" in message and "the server is down (GET http://127.0.0.1:" in message


def test_answers_without_verdicts_count_as_failures_too(fake_judge):
    judge = fake_judge(lambda body: (200, "What a lovely reply."))
    reward = build(judge, on_error="zero", failure_window=3, max_failure_rate=0.5)
    with pytest.raises(JudgeError, match=r"failed on 3 of the last 3 requests \(100%"):
        reward.call_sync(["p"] * 3, [kardia("a"), kardia("b"), kardia("c")])


def test_failures_below_the_rate_and_a_rate_of_one_do_not_stop(fake_judge):
    answers = iter(["no verdict"] + [ALL_FOURS] * 3 + ["no verdict"] * 4)
    judge = fake_judge(lambda body: (200, next(answers)))
    reward = build(judge, cache=False, failure_window=4, max_failure_rate=0.25, max_concurrency=1)
    assert reward.call_sync(["p"] * 4, [kardia(str(i)) for i in range(4)]) == [None, 0.75, 0.75, 0.75]
    tolerant = build(judge, cache=False, failure_window=4, max_failure_rate=1.0)
    assert tolerant.call_sync(["p"] * 4, [kardia(str(i)) for i in range(4, 8)]) == [None] * 4


def test_an_unhealthy_server_is_named_and_its_recovery_logged(fake_judge, caplog):
    failing = {"now": True}
    judge = fake_judge(lambda body: (503, "overloaded") if failing["now"] else (200, ALL_FOURS), health=503)
    reward = build(judge, on_error="raise", max_retries=0)
    with pytest.raises(JudgeError, match=r"the server is down \(GET http://127.0.0.1:\d+/health answered HTTP 503\)"):
        reward.call_sync(["p"], [kardia("Sorry.")])
    assert reward.server_problem is not None
    failing["now"], judge.health = False, 200
    with caplog.at_level(logging.WARNING, logger="rewards.rubric_judge"):
        assert reward.call_sync(["p"], [kardia("Sorry.")]) == [0.75]
    assert reward.server_problem is None and "answers again" in caplog.text


# ── Secrets and configuration ──


def test_the_api_key_is_sent_but_never_shown(fake_judge, monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", "sk-very-secret")
    judge = fake_judge(lambda body: (401, "bad key"))
    reward = build(judge, api_key_env="TEST_JUDGE_KEY", on_error="raise")
    with pytest.raises(JudgeError) as caught:
        reward.call_sync(["p"], [kardia("Sorry.")])
    assert judge.authorizations == ["Bearer sk-very-secret"]
    assert "sk-very-secret" not in str(caught.value) and "sk-very-secret" not in repr(reward.client)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "localhost:8000/v1"}, "with its scheme"),
        ({"max_failure_rate": 1.5}, "max_failure_rate"),
        ({"failure_window": 0}, "failure_window"),
        ({"temperature": -1.0}, "temperature"),
    ],
)
def test_bad_fault_options_are_config_errors(options, message):
    import rewards

    with pytest.raises(ConfigError, match=message):
        rewards.build("rubric", base_url_env="", **options)


@pytest.mark.parametrize(("model", "expected"), [("fake", [0.75]), ("", [None])])
def test_a_server_without_a_model_list_needs_the_model_named(fake_judge, model, expected):
    judge = fake_judge(lambda body: (200, ALL_FOURS), models=404)
    reward = build(judge, model=model)
    assert reward.call_sync(["p"], [kardia("Sorry.")]) == expected
    if model == "":
        assert "set the reward's model option" in reward.last_batch[0].error and judge.bodies == []
