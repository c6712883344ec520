"""Rubric-as-judge reward: an LLM judge behind an OpenAI-compatible server scores each completion.

Sources: Kardia-R1's rubric-as-judge reward (rubric ``empathy``: relevance, empathy, persona
consistency, safety, fluency; its scale and weights are unpublished); HumanOmniV2's judged
``context`` (one score in {0, 1, 2, 4, 5} / 5, the reference context against the model's
<context>) and ``logic`` (five 1-point criteria / 5, the model's own <context> against its own
<think>) rewards, with the official wording; ``emotion_reasoning`` (grounded in the input,
consistent with the answer). The judge code is split by job: rubric files
(``rewards.rubric_spec``), the prompt (``rewards.rubric_prompt``), verdict parsing
(``rewards.rubric_verdict``), the HTTP client (``rewards.judge_client``), the cache
(``rewards.judge_cache``) and the batch engine with its failure policies (``rewards.rubric_judge``).

Formula: with the judge's scores ``s_d`` on scales ``[lo_d, hi_d]`` and weights ``w_d``,
reward = sum_d w_d * (s_d - lo_d) / (hi_d - lo_d) / sum_d w_d, in [0, 1]. A completion
without a span the rubric judges (e.g. no response span) scores 0 without asking the judge; a
row without a column the rubric requires gets None. When the judge fails (see
``rewards.rubric_judge`` for every failure mode), ``on_error`` decides: ``skip`` -> None (TRL
ignores the sample), ``zero`` -> 0.0, ``raise`` -> JudgeError naming the server; and whatever
``on_error`` says, more than ``max_failure_rate`` failures over the last ``failure_window``
requests stop training with a JudgeError naming the server and the rate. Equal questions in a
batch are asked once, and verdicts are cached by the whole request and the model the server
reports (``cache: PATH`` keeps them across runs and ranks).

The reward is a coroutine function (TRL's GRPOTrainer awaits it on its event-loop thread, beside
other async rewards); ``fn.judge.call_sync(prompts, completions, **columns)`` runs it from
synchronous code, and ``asynchronous=False`` builds a plain function instead. Each call logs
``judge/<rubric>/...`` metrics through TRL's ``log_metric`` (latency, cache hit rate, parse,
request and truncation rates, retries, server_up, per-dimension means) and keeps running totals
on ``fn.judge.stats``; ``fn.judge.last_batch`` holds the judge's raw answers of the latest call.
"""

from __future__ import annotations

import os

from rewards.errors import ConfigError
from rewards.judge_cache import JudgeCache
from rewards.judge_client import JudgeClient
from rewards.registry import register
from rewards.rubric_judge import RubricJudge
from rewards.rubric_spec import available_rubrics, load_rubric

ON_ERROR = ("skip", "zero", "raise")


def _check(condition: bool, option: str, value, accepted: str) -> None:
    if not condition:
        raise ConfigError(f"Reward 'rubric': option {option}={value!r} is invalid; {accepted}.")


@register(
    "rubric",
    summary="LLM-judge rubric score in [0, 1] via an OpenAI-compatible server; rubrics: "
    + ", ".join(available_rubrics()),
    value_range=(0.0, 1.0),
)
def rubric_reward(
    *,
    rubric: str = "empathy",
    base_url: str = "http://127.0.0.1:8000/v1",
    base_url_env: str = "AFFECT_RL_JUDGE_URL",
    model: str = "",
    api_key_env: str = "AFFECT_RL_JUDGE_API_KEY",
    max_concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 3,
    backoff: float = 1.0,
    on_error: str = "skip",
    cache: bool | str = True,
    temperature: float = 0.0,
    max_tokens: int = 256,
    span: str | None = None,
    template: str | None = None,
    max_failure_rate: float = 0.5,
    failure_window: int = 64,
    asynchronous: bool = True,
):
    """Rubric-as-judge reward (Kardia-R1, HumanOmniV2), in [0, 1] or None.

    Args:
        rubric: a shipped rubric (``context``, ``emotion_reasoning``, ``empathy``, ``logic``) or a rubric .yaml path.
        base_url: the judge's OpenAI-compatible API root, e.g. ``http://judge-node:8000/v1``.
        base_url_env: an environment variable that, when set, overrides ``base_url`` (Slurm sets it).
        model: the served model name; empty: the first model the server lists.
        api_key_env: environment variable holding the API key (none needed for a local server).
        max_concurrency: requests in flight at once.
        timeout: seconds per request; max_retries / backoff: retries with exponential backoff from ``backoff`` s.
        on_error: ``skip`` (None), ``zero`` (0.0) or ``raise`` (JudgeError) when the judge fails or answers no verdict.
        cache: True (in memory), False, or a path of a SQLite file shared across runs and ranks.
        temperature, max_tokens: the judge's sampling (0 makes repeats and the cache consistent).
        span: which span of the completion is judged (rubrics that judge one); default the rubric's,
            ``all`` for the whole completion.
        template: the output template whose spans are read (the stage's); default the rubric's own.
        max_failure_rate, failure_window: stop training with a JudgeError when more than this share
            of the last ``failure_window`` judge requests failed, whatever ``on_error`` says (1: never).
        asynchronous: False makes ``__call__`` synchronous (for callers that do not await).

    Returns:
        ``async fn(prompts, completions, **columns) -> list[float | None]`` (a plain function
        with ``asynchronous=False``); ``fn.judge`` is its RubricJudge (stats, last batch, call_sync).
    """
    spec = load_rubric(rubric)
    _check(on_error in ON_ERROR, "on_error", on_error, f"accepted values: {', '.join(ON_ERROR)}")
    _check(isinstance(max_concurrency, int) and max_concurrency >= 1, "max_concurrency", max_concurrency,
           "use an integer >= 1")  # fmt: skip
    _check(isinstance(max_retries, int) and max_retries >= 0, "max_retries", max_retries, "use an integer >= 0")
    _check(timeout > 0, "timeout", timeout, "use a number of seconds > 0")
    _check(backoff >= 0, "backoff", backoff, "use a number of seconds >= 0")
    _check(isinstance(max_tokens, int) and max_tokens >= 1, "max_tokens", max_tokens, "use an integer >= 1")
    _check(isinstance(cache, (bool, str)), "cache", cache, "use true, false or a file path")
    _check(temperature >= 0, "temperature", temperature, "use a number >= 0")
    _check(0 <= max_failure_rate <= 1, "max_failure_rate", max_failure_rate, "use a number in [0, 1]")
    _check(isinstance(failure_window, int) and failure_window >= 1, "failure_window", failure_window,
           "use an integer >= 1")  # fmt: skip
    overriding_url = os.environ.get(base_url_env) if base_url_env else None
    url = overriding_url or base_url
    if not url.startswith(("http://", "https://")):
        where = f"the environment variable {base_url_env}" if overriding_url else "option base_url"
        raise ConfigError(f"Reward 'rubric': {where} is {url!r}; give the judge's API root with its scheme, "
                          "e.g. http://127.0.0.1:8000/v1")  # fmt: skip
    client = JudgeClient(
        base_url=url,
        model=model,
        api_key=os.environ.get(api_key_env) if api_key_env else None,
        timeout=float(timeout),
        max_retries=max_retries,
        backoff=float(backoff),
        max_concurrency=max_concurrency,
        temperature=float(temperature),
        max_tokens=max_tokens,
    )
    judge_cache = JudgeCache(cache if isinstance(cache, str) else None) if cache else None
    judge = RubricJudge(spec, client, cache=judge_cache, on_error=on_error, template=template, span=span,
                        max_failure_rate=float(max_failure_rate), failure_window=failure_window)  # fmt: skip
    if asynchronous:

        async def rubric_fn(prompts, completions, **columns) -> list[float | None]:
            return await judge.score(prompts, completions, **columns)

    else:

        def rubric_fn(prompts, completions, **columns) -> list[float | None]:
            return judge.call_sync(prompts, completions, **columns)

    rubric_fn.judge = judge
    return rubric_fn
