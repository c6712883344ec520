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

The reward is an object with an async ``__call__`` (TRL's GRPOTrainer awaits it on its event-loop
thread, beside other async rewards); ``reward.judge.call_sync(prompts, completions, **columns)``
runs it from synchronous code, and ``asynchronous: false`` builds a plain synchronous one. It pickles
its options only: the engine, its HTTP client and its cache are rebuilt on first use. Each call logs
``judge/<rubric>/...`` metrics through TRL's ``log_metric`` (latency, cache hit rate, parse,
request and truncation rates, retries, server_up, per-dimension means) and keeps running totals
on ``reward.judge.stats``; ``reward.judge.last_batch`` holds the judge's raw answers of the latest call.
"""

from __future__ import annotations

import os
from typing import Literal

from rewards.base import Above, Annotated, AtLeast, Between, Reward
from rewards.errors import ConfigError
from rewards.judge_cache import JudgeCache
from rewards.judge_client import JudgeClient
from rewards.registry import register
from rewards.rubric_judge import RubricJudge
from rewards.rubric_spec import available_rubrics, load_rubric

ON_ERROR = ("skip", "zero", "raise")


@register
class RubricReward(Reward):
    """Rubric-as-judge reward (Kardia-R1, HumanOmniV2), in [0, 1] or None.

    Options:
        rubric: a shipped rubric (``context``, ``emotion_reasoning``, ``empathy``, ``logic``) or a rubric .yaml path.
        base_url: the judge's OpenAI-compatible API root, e.g. ``http://judge-node:8000/v1``.
        base_url_env: an environment variable that, when set, overrides ``base_url`` (Slurm sets it).
        model: the served model name; empty: the first model the server lists.
        api_key_env: environment variable holding the API key (none needed for a local server).
        max_concurrency: requests in flight at once.
        timeout: seconds per request; max_retries / backoff: retries with exponential backoff from ``backoff`` s.
        on_error: ``skip`` (None), ``zero`` (0.0) or ``raise`` (JudgeError) when the judge fails or answers no verdict.
        cache: true (in memory), false, or a path of a SQLite file shared across runs and ranks.
        temperature, max_tokens: the judge's sampling (0 makes repeats and the cache consistent).
        span: which span of the completion is judged (rubrics that judge one); default the rubric's,
            ``all`` for the whole completion.
        template: the output template whose spans are read (filled from the stage); default the rubric's own.
        max_failure_rate, failure_window: stop training with a JudgeError when more than this share
            of the last ``failure_window`` judge requests failed, whatever ``on_error`` says (1: never).
        asynchronous: false makes ``__call__`` synchronous (for callers that do not await).

    ``await reward(prompts, completions, **columns) -> list[float | None]`` (TRL awaits it);
    ``reward.judge`` is the RubricJudge engine behind it (stats, last batch, ``call_sync``).
    """

    name = "rubric"
    summary = "LLM-judge rubric score in [0, 1] via an OpenAI-compatible server; rubrics: " + ", ".join(
        available_rubrics()
    )
    value_range = (0.0, 1.0)
    source = "Kardia-R1 (rubric-as-judge), HumanOmniV2 (context and logic judges)"

    def __new__(cls, **options):
        if cls is RubricReward and options.get("asynchronous") is False:
            cls = SyncRubricReward
        return super().__new__(cls)

    def __init__(
        self,
        *,
        rubric: str = "empathy",
        base_url: str = "http://127.0.0.1:8000/v1",
        base_url_env: str = "AFFECT_RL_JUDGE_URL",
        model: str = "",
        api_key_env: str = "AFFECT_RL_JUDGE_API_KEY",
        max_concurrency: Annotated[int, AtLeast(1)] = 8,
        timeout: Annotated[float, Above(0)] = 60.0,
        max_retries: Annotated[int, AtLeast(0)] = 3,
        backoff: Annotated[float, AtLeast(0)] = 1.0,
        on_error: Literal[ON_ERROR] = "skip",
        cache: bool | str = True,
        temperature: Annotated[float, AtLeast(0)] = 0.0,
        max_tokens: Annotated[int, AtLeast(1)] = 256,
        span: str | None = None,
        template: str | None = None,
        max_failure_rate: Annotated[float, Between(0, 1)] = 0.5,
        failure_window: Annotated[int, AtLeast(1)] = 64,
        asynchronous: bool = True,
    ):
        self.rubric, self.base_url, self.base_url_env, self.model = rubric, base_url, base_url_env, model
        self.api_key_env, self.max_concurrency, self.timeout = api_key_env, max_concurrency, timeout
        self.max_retries, self.backoff, self.on_error, self.cache = max_retries, backoff, on_error, cache
        self.temperature, self.max_tokens, self.span, self.template = temperature, max_tokens, span, template
        self.max_failure_rate, self.failure_window, self.asynchronous = max_failure_rate, failure_window, asynchronous
        self._judge = self._build_judge()

    def _build_judge(self) -> RubricJudge:
        spec = load_rubric(self.rubric)
        overriding_url = os.environ.get(self.base_url_env) if self.base_url_env else None
        url = overriding_url or self.base_url
        if not url.startswith(("http://", "https://")):
            where = f"the environment variable {self.base_url_env}" if overriding_url else "option base_url"
            raise ConfigError(f"Reward 'rubric': {where} is {url!r}; give the judge's API root with its scheme, "
                              "e.g. http://127.0.0.1:8000/v1")  # fmt: skip
        client = JudgeClient(
            base_url=url,
            model=self.model,
            api_key=os.environ.get(self.api_key_env) if self.api_key_env else None,
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_concurrency=self.max_concurrency,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        judge_cache = JudgeCache(self.cache if isinstance(self.cache, str) else None) if self.cache else None
        return RubricJudge(spec, client, cache=judge_cache, on_error=self.on_error, template=self.template,
                           span=self.span, max_failure_rate=self.max_failure_rate,
                           failure_window=self.failure_window)  # fmt: skip

    @property
    def judge(self) -> RubricJudge:
        """The judge engine (rebuilt on first use after unpickling)."""
        if self._judge is None:
            self._judge = self._build_judge()
        return self._judge

    def __getstate__(self) -> dict:
        return {**self.options(), "__name__": self.__name__}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._judge = None

    async def __call__(self, prompts, completions, **columns) -> list[float | None]:
        return await self.judge.score(prompts, completions, **columns)


class SyncRubricReward(RubricReward):
    """The rubric reward with ``asynchronous: false``: a plain call that runs the judge to completion."""

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        return self.judge.call_sync(prompts, completions, **columns)
