"""Rubric-as-judge reward: an LLM judge behind an OpenAI-compatible server scores each completion.

Sources: Kardia-R1's rubric-as-judge reward (rubric ``empathy``: relevance, empathy, persona
consistency, safety, fluency); HumanOmniV2's judged ``context`` (0-5 / 5) and ``logic`` (five
1-point criteria / 5) rewards; ``emotion_reasoning`` (grounded in the input, consistent with
the answer). Rubrics, prompt and parsing: ``rewards.rubric_spec``; the server client and the
cache: ``rewards.judge_client``.

Formula: with the judge's scores ``s_d`` on scales ``[lo_d, hi_d]`` and weights ``w_d``,
reward = sum_d w_d * (s_d - lo_d) / (hi_d - lo_d) / sum_d w_d, in [0, 1]. A completion
without the rubric's span (e.g. no ``<response>``) scores 0 without asking the judge; a row
without a column the rubric requires gets None. When the server fails (after retries) or its
answer holds no valid verdict, ``on_error`` decides: ``skip`` -> None (TRL ignores the sample),
``zero`` -> 0.0, ``raise`` -> JudgeError naming the server. Equal questions in a batch are
asked once, and the judge's answers are cached by (rubric, judge model, prompt, judged text,
dataset inputs), so repeats cost nothing (``cache: PATH`` keeps them across runs and ranks).

The reward is a coroutine function (TRL's GRPOTrainer awaits it on its event-loop thread, beside
other async rewards); ``fn.judge.call_sync(prompts, completions, **columns)`` runs it from
synchronous code, and ``asynchronous=False`` builds a plain function instead. Each call logs
``judge/<rubric>/...`` metrics through TRL's ``log_metric`` (latency, cache hit rate, parse and
request failure rates, retries, per-dimension means) and keeps running totals on
``fn.judge.stats``; ``fn.judge.last_batch`` holds the judge's raw answers of the latest call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from dataclasses import dataclass, field
from typing import Literal

from rewards.base import Above, Annotated, AtLeast, Reward
from rewards.errors import JudgeError
from rewards.judge_client import JudgeCache, JudgeClient, JudgeRequestError, cache_key
from rewards.registry import register
from rewards.rubric_spec import Rubric, available_rubrics, conversation_text, judge_messages, load_rubric, parse_verdict
from rewards.text import completion_text, tag_span

ON_ERROR = ("skip", "zero", "raise")
WHOLE_COMPLETION = "all"


@dataclass
class JudgeStats:
    """Counters of one batch, or running totals over every batch (``merge``)."""

    samples: int = 0
    judged: int = 0  # samples that needed a verdict (span present, rubric applies)
    cache_hits: int = 0  # judged samples served by the cache or by a duplicate in the batch
    requests: int = 0  # verdicts asked of the server
    parse_failures: int = 0
    request_failures: int = 0
    retries: int = 0
    missing_span: int = 0
    not_applicable: int = 0
    latency_s_total: float = 0.0
    latency_s_max: float = 0.0
    scored: int = 0
    dimension_totals: dict[str, float] = field(default_factory=dict)

    def merge(self, other: JudgeStats) -> None:
        for name, value in vars(other).items():
            if name == "dimension_totals":
                for key, total in value.items():
                    self.dimension_totals[key] = self.dimension_totals.get(key, 0.0) + total
            elif name == "latency_s_max":
                self.latency_s_max = max(self.latency_s_max, value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Rates and means, each only when its denominator is non-zero."""
        metrics = {}
        if self.judged:
            metrics[f"{prefix}/cache_hit_rate"] = self.cache_hits / self.judged
        if self.requests:
            metrics[f"{prefix}/latency_s"] = self.latency_s_total / self.requests
            metrics[f"{prefix}/parse_failure_rate"] = self.parse_failures / self.requests
            metrics[f"{prefix}/request_failure_rate"] = self.request_failures / self.requests
            metrics[f"{prefix}/retries"] = float(self.retries)
        if self.samples:
            metrics[f"{prefix}/missing_span_rate"] = self.missing_span / self.samples
        if self.scored:
            for key, total in self.dimension_totals.items():
                metrics[f"{prefix}/{key}"] = total / self.scored
        return metrics


@dataclass
class JudgedSample:
    """What happened to one completion: its reward and, when the judge was asked, why."""

    reward: float | None
    scores: dict[str, float] | None = None
    answer: str | None = None
    error: str | None = None
    cached: bool = False


@dataclass
class _Verdict:
    """The judge's verdict on one distinct request: scores, or the error that replaced them."""

    scores: dict[str, float] | None
    answer: str | None = None
    error: str | None = None
    cached: bool = False


@dataclass
class _Request:
    """One distinct judge question of a batch (samples with equal keys share it)."""

    key: str
    messages: list[dict]
    policy_texts: tuple[str, ...]


class RubricReward:
    """The judge behind a rubric reward function: ``await judge.score(prompts, completions, **columns)``."""

    def __init__(self, rubric: Rubric, client: JudgeClient, cache: JudgeCache | None, on_error: str, span: str | None):
        self.rubric = rubric
        self.client = client
        self.cache = cache
        self.on_error = on_error
        self.span = span
        # Keyed on the configured name: an empty `model` resolves at the first request, and the
        # key must not change between batches.
        self.key_model = client.model or f"first model at {client.base_url}"
        self.stats = JudgeStats()
        self.last_batch: list[JudgedSample] = []

    async def score(self, prompts, completions, log_metric=None, log_extra=None, **columns) -> list[float | None]:
        """The rewards of one batch; ``columns`` are the dataset's columns (TRL passes them all)."""
        batch = JudgeStats(samples=len(completions))
        samples: list[JudgedSample | None] = []
        requests: dict[str, _Request] = {}
        sample_keys: list[str | None] = []
        for row, completion in enumerate(completions):
            prompt = prompts[row] if prompts is not None else ""
            outcome = self._prepare(row, prompt, completion, columns, batch)
            if isinstance(outcome, _Request):
                requests.setdefault(outcome.key, outcome)
                samples.append(None)
                sample_keys.append(outcome.key)
            else:
                samples.append(outcome)
                sample_keys.append(None)
        verdicts = await self._verdicts(requests, batch)
        used = set()
        for row, key in enumerate(sample_keys):
            if key is not None:
                # The first sample of a freshly judged key paid for the request; later ones are hits.
                hit = verdicts[key].cached or key in used
                used.add(key)
                samples[row] = self._sample(verdicts[key], hit, batch)
        self.stats.merge(batch)
        self.last_batch = samples
        self._log(batch, samples, log_metric, log_extra)
        if self.on_error == "raise" and any(sample.error for sample in samples):
            raise JudgeError(self._error_message(samples))
        return [sample.reward for sample in samples]

    def call_sync(self, prompts, completions, **columns) -> list[float | None]:
        """Run the reward from synchronous code (in a worker thread if a loop is already running here)."""
        coroutine = self.score(prompts, completions, **columns)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    def _prepare(self, row: int, prompt, completion, columns: dict, batch: JudgeStats):
        """A judge request for one sample, or its final JudgedSample when no judge is needed."""
        if any(_column_value(columns, name, row) in (None, "", []) for name in self.rubric.requires):
            batch.not_applicable += 1
            return JudgedSample(reward=None)
        text = completion_text(completion)
        judged_text = text if self.span is None else tag_span(text, self.span)
        if not judged_text:
            batch.missing_span += 1
            return JudgedSample(reward=0.0)
        conversation = conversation_text(prompt)
        inputs = [
            {"name": name, "text": _as_text(_column_value(columns, name, row))}
            for name in self.rubric.inputs
            if _column_value(columns, name, row) not in (None, "", [])
        ]
        batch.judged += 1
        key = cache_key(
            self.rubric.name, self.rubric.fingerprint, self.key_model, conversation, judged_text,
            [(block["name"], block["text"]) for block in inputs],
        )  # fmt: skip
        messages = judge_messages(self.rubric, conversation, judged_text, inputs)
        policy_texts = (judged_text, conversation, *(block["text"] for block in inputs))
        return _Request(key, messages, policy_texts)

    async def _verdicts(self, requests: dict[str, _Request], batch: JudgeStats) -> dict[str, _Verdict]:
        """key -> verdict for every distinct request of the batch: from the cache, else from the judge."""
        cached = self.cache.get_many(list(requests)) if self.cache else {}
        verdicts = {key: self._parse(requests[key], answer, cached=True) for key, answer in cached.items()}
        missing = [request for key, request in requests.items() if key not in cached]
        if missing:
            retries_before = self.client.log.retries
            async with self.client.session() as (http, semaphore):
                answers = await asyncio.gather(
                    *(self.client.complete(http, semaphore, request.messages) for request in missing),
                    return_exceptions=True,
                )
            batch.retries += self.client.log.retries - retries_before
            for request, answer in zip(missing, answers):
                verdicts[request.key] = self._read_reply(request, answer, batch)
            if self.cache:
                fresh = {key: v.answer for key, v in verdicts.items() if v.answer is not None and not v.cached}
                self.cache.put_many(fresh)
        return verdicts

    def _read_reply(self, request: _Request, reply, batch: JudgeStats) -> _Verdict:
        """The verdict from one server reply (a JudgeReply, or the exception that replaced it)."""
        batch.requests += 1
        if isinstance(reply, JudgeRequestError):
            batch.request_failures += 1
            return _Verdict(None, error=f"request failed after {reply.attempts} attempt(s): {reply}")
        if isinstance(reply, BaseException):
            raise reply
        batch.latency_s_total += reply.latency_s
        batch.latency_s_max = max(batch.latency_s_max, reply.latency_s)
        verdict = self._parse(request, reply.text, cached=False)
        batch.parse_failures += verdict.scores is None
        return verdict

    def _parse(self, request: _Request, answer: str, cached: bool) -> _Verdict:
        scores = parse_verdict(answer, self.rubric, request.policy_texts)
        if scores is None:
            error = f"no valid verdict with keys {self.rubric.keys} in the answer {answer[:200]!r}"
            return _Verdict(None, answer=answer, error=error, cached=cached)
        return _Verdict(scores, answer=answer, cached=cached)

    def _sample(self, verdict: _Verdict, hit: bool, batch: JudgeStats) -> JudgedSample:
        """The JudgedSample of one judged completion."""
        batch.cache_hits += hit
        if verdict.scores is None:
            reward = 0.0 if self.on_error == "zero" else None
            return JudgedSample(reward=reward, answer=verdict.answer, error=verdict.error, cached=hit)
        batch.scored += 1
        for dimension in self.rubric.dimensions:
            value = dimension.normalise(verdict.scores[dimension.name])
            batch.dimension_totals[dimension.name] = batch.dimension_totals.get(dimension.name, 0.0) + value
        reward = self.rubric.combine(verdict.scores)
        return JudgedSample(reward=reward, scores=verdict.scores, answer=verdict.answer, cached=hit)

    def _log(self, batch: JudgeStats, samples: list[JudgedSample], log_metric, log_extra) -> None:
        if log_metric is not None:
            for name, value in batch.metrics(f"judge/{self.rubric.name}").items():
                log_metric(name, value)
        if log_extra is not None:
            log_extra(f"judge/{self.rubric.name}", [sample.answer or sample.error or "" for sample in samples])

    def _error_message(self, samples: list[JudgedSample]) -> str:
        """What failed (server errors first: they are what the user must fix) and the ways out."""
        unreachable = [s.error for s in samples if s.error and s.answer is None]
        unparsed = [s.error for s in samples if s.error and s.answer is not None]
        problems = []
        if unreachable:
            problems.append(
                f"{len(unreachable)} request(s) failed (first: {unreachable[0]}); start the judge server "
                "(CPU: launch/judge/serve_local.sh; GPU: launch/judge/serve_vllm.sh MODEL) or point the "
                "reward's base_url (or AFFECT_RL_JUDGE_URL) at a running OpenAI-compatible server"
            )
        if unparsed:
            problems.append(
                f"{len(unparsed)} answer(s) held no verdict (first: {unparsed[0]}); use a larger judge "
                "model or raise max_tokens"
            )
        return (
            f"The {self.rubric.name!r} rubric judge at {self.client.base_url} (model {self.key_model!r}): "
            + "; ".join(problems)
            + ". To train through judge failures set on_error: skip (the sample is ignored) or zero."
        )


def _column_value(columns: dict, name: str, row: int):
    values = columns.get(name)
    return values[row] if isinstance(values, (list, tuple)) and row < len(values) else None


def _as_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


@register
class RubricJudge(Reward):
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
        span: which span of the completion is judged; default the rubric's, ``all`` for the whole completion.
        asynchronous: false makes ``__call__`` synchronous (for callers that do not await).

    ``await reward(prompts, completions, **columns) -> list[float | None]`` (TRL awaits it);
    ``reward.judge`` is the RubricReward engine behind it (stats, last batch, ``call_sync``).
    Pickling keeps the options only: the engine, its HTTP client and its cache connection are
    rebuilt on first use after unpickling.
    """

    name = "rubric"
    summary = "LLM-judge rubric score in [0, 1] via an OpenAI-compatible server; rubrics: " + ", ".join(
        available_rubrics()
    )
    value_range = (0.0, 1.0)
    source = "Kardia-R1 (rubric-as-judge), HumanOmniV2 (context and logic judges)"

    def __new__(cls, **options):
        if cls is RubricJudge and options.get("asynchronous") is False:
            cls = SyncRubricJudge
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
        asynchronous: bool = True,
    ):
        self.rubric, self.base_url, self.base_url_env, self.model = rubric, base_url, base_url_env, model
        self.api_key_env, self.max_concurrency, self.timeout = api_key_env, max_concurrency, timeout
        self.max_retries, self.backoff, self.on_error, self.cache = max_retries, backoff, on_error, cache
        self.temperature, self.max_tokens, self.span, self.asynchronous = temperature, max_tokens, span, asynchronous
        self._judge = self._build_judge()

    def _build_judge(self) -> RubricReward:
        spec = load_rubric(self.rubric)
        overriding_url = os.environ.get(self.base_url_env) if self.base_url_env else None
        client = JudgeClient(
            base_url=overriding_url or self.base_url,
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
        judged_span = None if self.span == WHOLE_COMPLETION else (self.span or spec.span)
        return RubricReward(spec, client, judge_cache, self.on_error, judged_span)

    @property
    def judge(self) -> RubricReward:
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


class SyncRubricJudge(RubricJudge):
    """The rubric reward with ``asynchronous: false``: a plain call that runs the judge to completion."""

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        return self.judge.call_sync(prompts, completions, **columns)
