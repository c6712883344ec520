"""The rubric judge: scores a batch of completions through an LLM judge server.

One batch: each completion becomes its blocks (``rewards.rubric_spec``), rendered into chat
messages (``rewards.rubric_prompt``); equal questions are asked once; the server is asked which
model it serves (``GET /models``, which doubles as a health poll every batch); answers come from
the cache (``rewards.judge_cache``) or the server (``rewards.judge_client``); verdicts are
parsed (``rewards.rubric_verdict``) and combined by the rubric's formula.

Failures and ``on_error``: a request that fails after retries (connection refused, timeouts,
HTTP errors, an answer that is not a chat completion, a garbage ``/models`` answer), an answer
without a verdict (empty, cut at ``max_tokens``, off the scale) and a completion too deeply
nested to read all give ``skip`` -> None, ``zero`` -> 0.0 or ``raise`` -> JudgeError. Whatever
the policy, when more than ``max_failure_rate`` of the last ``failure_window`` requests failed,
the judge raises a JudgeError naming the server and the rate: a dead judge must not silently
drop its reward from the objective. After a batch with failed requests the judge polls the
server's ``/health``; its state is logged (``judge/<rubric>/server_up``) and named in errors.

Only answers that hold a verdict, were not cut at ``max_tokens`` and came from the model the
server listed are cached.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
from dataclasses import dataclass

from rewards.errors import ConfigError, JudgeError
from rewards.judge_cache import JudgeCache, cache_key
from rewards.judge_client import JudgeClient, JudgeRequestError, ServedModel
from rewards.judge_stats import FailureWindow, JudgeStats
from rewards.rubric_prompt import conversation_text, judge_messages
from rewards.rubric_spec import COMPLETION, PROMPT, Block, Rubric
from rewards.rubric_verdict import parse_verdict
from rewards.templates import Span, get_template, tag
from rewards.text import completion_text

logger = logging.getLogger(__name__)
WHOLE_COMPLETION = "all"


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
    cacheable: bool = False


@dataclass
class _Request:
    """One distinct judge question of a batch (samples with equal messages share it)."""

    messages: list[dict]
    policy_texts: tuple[str, ...]


class RubricJudge:
    """Scores batches with ``await judge.score(prompts, completions, **columns)`` (or ``call_sync``).

    ``template`` names the output template whose spans the rubric's blocks read (default: the
    rubric's own); ``span`` replaces the span of the rubric's one completion block (``all``: the
    whole completion). Both are checked here: a span the template lacks is a ConfigError.
    """

    def __init__(self, rubric: Rubric, client: JudgeClient, *, cache: JudgeCache | None = None,
                 on_error: str = "skip", template: str | None = None, span: str | None = None,
                 max_failure_rate: float = 0.5, failure_window: int = 64):  # fmt: skip
        self.rubric = rubric
        self.client = client
        self.cache = cache
        self.on_error = on_error
        self.blocks = _blocks(rubric, span)
        self.spans = _spans(rubric, self.blocks, template or rubric.template)
        self.max_failure_rate = max_failure_rate
        self.window = FailureWindow(failure_window)
        self.server_problem: str | None = None  # what the last health poll found wrong, None when up
        self.stats = JudgeStats()
        self.last_batch: list[JudgedSample] = []
        self._warned_model = False

    async def score(self, prompts, completions, log_metric=None, log_extra=None, **columns) -> list[float | None]:
        """The rewards of one batch; ``columns`` are the dataset's columns (TRL passes them all)."""
        batch = JudgeStats(samples=len(completions))
        samples: list[JudgedSample | None] = []
        requests: dict[str, _Request] = {}
        sample_keys: list[str | None] = []
        for row, completion in enumerate(completions):
            prompt = prompts[row] if prompts is not None and row < len(prompts) else ""
            outcome = self._prepare(row, prompt, completion, columns, batch)
            key = None
            if isinstance(outcome, _Request):
                key = hashlib.sha256(json.dumps(outcome.messages, ensure_ascii=True).encode()).hexdigest()
                requests.setdefault(key, outcome)
                outcome = None
            samples.append(outcome)
            sample_keys.append(key)
        verdicts = await self._verdicts(requests, batch, log_metric) if requests else {}
        used = set()
        for row, key in enumerate(sample_keys):
            if key is not None:
                # The first sample of a freshly judged key paid for the request; later ones are hits.
                samples[row] = self._sample(verdicts[key], verdicts[key].cached or key in used, batch)
                used.add(key)
        self.stats.merge(batch)
        self.last_batch = samples
        if log_metric is not None:
            for name, value in batch.metrics(self._prefix).items():
                log_metric(name, value)
        if log_extra is not None:
            log_extra(self._prefix, [sample.answer or sample.error or "" for sample in samples])
        self._enforce_policies(samples)
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

    @property
    def _prefix(self) -> str:
        return f"judge/{self.rubric.name}"

    # ── One sample ──

    def _prepare(self, row: int, prompt, completion, columns: dict, batch: JudgeStats):
        """A judge request for one sample, or its final JudgedSample when no judge is needed."""
        try:
            columns_shown = {block: self._column_text(block, columns, row) for block in self.blocks
                             if block.source not in (PROMPT, COMPLETION)}  # fmt: skip
            if any(block.required and not text for block, text in columns_shown.items()):
                batch.not_applicable += 1
                return JudgedSample(reward=None)
            text = completion_text(completion)
        except RecursionError:
            return JudgedSample(reward=self._failed_reward(), error="the completion or a column of the row is "
                                "nested too deeply to read")  # fmt: skip
        blocks = []
        for block in self.blocks:
            if block.source == PROMPT:
                shown = conversation_text(prompt)
            elif block.source == COMPLETION:
                shown = self._read(text, block)
                if not shown:
                    batch.missing_span += 1
                    return JudgedSample(reward=0.0)
            else:
                shown = columns_shown[block]
            if shown:
                blocks.append((block.title, _clean(shown)))
        batch.judged += 1
        return _Request(judge_messages(self.rubric, blocks), tuple(text for _, text in blocks))

    def _column_text(self, block: Block, columns: dict, row: int) -> str | None:
        """The text a column block shows for ``row`` (its span, if it names one), or None."""
        value = _column_value(columns, block.source, row)
        return None if value in (None, "", []) else self._read(_as_text(value), block)

    def _read(self, text: str, block: Block) -> str | None:
        return text if block.span is None else self.spans[block.span].text(text)

    def _failed_reward(self) -> float | None:
        return 0.0 if self.on_error == "zero" else None

    def _sample(self, verdict: _Verdict, hit: bool, batch: JudgeStats) -> JudgedSample:
        """The JudgedSample of one judged completion."""
        batch.cache_hits += hit
        if verdict.scores is None:
            return JudgedSample(reward=self._failed_reward(), answer=verdict.answer, error=verdict.error, cached=hit)
        batch.scored += 1
        for dimension in self.rubric.dimensions:
            value = dimension.normalise(verdict.scores[dimension.name])
            batch.dimension_totals[dimension.name] = batch.dimension_totals.get(dimension.name, 0.0) + value
        reward = self.rubric.combine(verdict.scores)
        return JudgedSample(reward=reward, scores=verdict.scores, answer=verdict.answer, cached=hit)

    # ── The server and the cache ──

    async def _verdicts(self, requests: dict[str, _Request], batch: JudgeStats, log_metric) -> dict[str, _Verdict]:
        """key -> verdict for every distinct request of the batch: from the cache, else from the judge."""
        retries_before = self.client.log.retries
        async with self.client.session() as (http, semaphore):
            try:
                served = await self.client.served_model(http)
            except JudgeRequestError as problem:
                verdicts = {key: self._read_reply(request, problem, None, batch) for key, request in requests.items()}
            else:
                verdicts = await self._ask(served, requests, http, semaphore, batch)
            self._set_health(await self.client.health(http) if batch.request_failures else None, log_metric)
        batch.retries += self.client.log.retries - retries_before
        return verdicts

    async def _ask(self, served: ServedModel, requests: dict[str, _Request], http, semaphore, batch) -> dict:
        bodies = {key: self.client.request_body(served.name, request.messages) for key, request in requests.items()}
        cache_keys = {key: cache_key(served.identity, body) for key, body in bodies.items()}
        cached = self.cache.get_many(list(cache_keys.values())) if self.cache else {}
        verdicts = {}
        for key, request in requests.items():
            if cache_keys[key] in cached:
                verdict = self._parse(request, cached[cache_keys[key]], cached=True)
                if verdict.scores is not None:  # else ask again
                    verdicts[key] = verdict
        missing = [key for key in requests if key not in verdicts]
        replies = await asyncio.gather(
            *(self.client.complete(http, semaphore, bodies[key]) for key in missing), return_exceptions=True
        )
        for key, reply in zip(missing, replies):
            verdicts[key] = self._read_reply(requests[key], reply, served, batch)
        if self.cache:
            self.cache.put_many({cache_keys[key]: verdicts[key].answer for key in missing if verdicts[key].cacheable})
        return verdicts

    def _read_reply(self, request: _Request, reply, served: ServedModel | None, batch: JudgeStats) -> _Verdict:
        """The verdict from one server reply (a JudgeReply, or the exception that replaced it)."""
        batch.requests += 1
        if isinstance(reply, JudgeRequestError):
            batch.request_failures += 1
            self.window.add([True])
            return _Verdict(None, error=f"request failed after {reply.attempts} attempt(s): {reply}")
        if isinstance(reply, BaseException):
            raise reply
        batch.latency_s_total += reply.latency_s
        batch.latency_s_max = max(batch.latency_s_max, reply.latency_s)
        verdict = self._parse(request, reply.text, cached=False)
        truncated = reply.finish_reason == "length"
        batch.truncated += truncated
        batch.parse_failures += verdict.scores is None
        self.window.add([verdict.scores is None])
        if verdict.scores is None and truncated:
            verdict.error += f"; the answer was cut at max_tokens={self.client.max_tokens}: raise max_tokens"
        same_model = reply.model in (None, served.name, served.identity)
        if not same_model and not self._warned_model:
            self._warned_model = True
            logger.warning("The judge at %s answered with model %r, not the %r it lists; these answers are not "
                           "cached.", self.client.base_url, reply.model, served.name)  # fmt: skip
        verdict.cacheable = verdict.scores is not None and not truncated and same_model
        return verdict

    def _parse(self, request: _Request, answer: str, cached: bool) -> _Verdict:
        scores = parse_verdict(answer, self.rubric, request.policy_texts)
        if scores is not None:
            return _Verdict(scores, answer=answer, cached=cached)
        error = "the judge answered nothing" if not answer.strip() else (
            f"no valid verdict with keys {self.rubric.keys} in the answer {answer[:200]!r}")  # fmt: skip
        return _Verdict(None, answer=answer, error=error, cached=cached)

    def _set_health(self, problem: str | None, log_metric) -> None:
        """Record the server's state (logged every batch), and say so when it changes."""
        if log_metric is not None:
            log_metric(f"{self._prefix}/server_up", float(problem is None))
        if problem is not None and self.server_problem is None:
            logger.warning("The judge server at %s is down: %s", self.client.base_url, problem)
        elif problem is None and self.server_problem is not None:
            logger.warning("The judge server at %s answers again.", self.client.base_url)
        self.server_problem = problem

    # ── Policies ──

    def _enforce_policies(self, samples: list[JudgedSample]) -> None:
        """on_error: raise, then max_failure_rate (whatever on_error says)."""
        if self.on_error == "raise" and any(sample.error for sample in samples):
            raise JudgeError(self._error_message(samples))
        rate = self.window.rate()
        if rate is not None and rate > self.max_failure_rate:
            size, first_error = self.window.outcomes.maxlen, next((s.error for s in samples if s.error), "none")
            raise JudgeError(
                f"The {self.rubric.name!r} rubric judge at {self.client.base_url} failed on {self.window.failures()} "
                f"of the last {size} requests ({rate:.0%}, above max_failure_rate {self.max_failure_rate})"
                f"{self._health()}; first error of this batch: {first_error}. Training stops so that the "
                "judge's reward does not silently drop out of the objective. Fix the judge server, or raise "
                "the reward's max_failure_rate (1 turns this check off)."
            )

    def _health(self) -> str:
        return "" if self.server_problem is None else f"; the server is down ({self.server_problem})"

    def _error_message(self, samples: list[JudgedSample]) -> str:
        """What failed (server errors first: they are what the user must fix) and the ways out."""
        unreachable = [s.error for s in samples if s.error and s.answer is None]
        unparsed = [s.error for s in samples if s.error and s.answer is not None]
        problems = []
        if unreachable:
            problems.append(
                f"{len(unreachable)} request(s) failed (first: {unreachable[0]}){self._health()}; start the judge "
                "server (CPU: launch/judge/serve_local.sh; GPU: launch/judge/serve_vllm.sh MODEL) or point the "
                "reward's base_url (or AFFECT_RL_JUDGE_URL) at a running OpenAI-compatible server"
            )
        if unparsed:
            problems.append(
                f"{len(unparsed)} answer(s) held no verdict (first: {unparsed[0]}); use a larger judge "
                "model or raise max_tokens"
            )
        model = self.client.model or "the first listed"
        return (
            f"The {self.rubric.name!r} rubric judge at {self.client.base_url} (model {model!r}): "
            + "; ".join(problems)
            + ". To train through judge failures set on_error: skip (the sample is ignored) or zero."
        )


def _blocks(rubric: Rubric, span: str | None) -> tuple[Block, ...]:
    """The rubric's blocks, the completion block's span replaced by ``span`` when given."""
    if span is None:
        return rubric.blocks
    judged = [block for block in rubric.blocks if block.source == COMPLETION]
    if len(judged) > 1:
        spans = ", ".join(str(block.span) for block in judged)
        raise ConfigError(f"Reward 'rubric': option span={span!r} cannot apply to rubric {rubric.name!r}, which "
                          f"judges {len(judged)} spans ({spans}); remove the option.")  # fmt: skip
    new_span = None if span == WHOLE_COMPLETION else span
    return tuple(
        Block(b.title, b.source, new_span, b.required) if b.source == COMPLETION else b for b in rubric.blocks
    )


def _spans(rubric: Rubric, blocks: tuple[Block, ...], template: str | None) -> dict[str, Span]:
    """Span name -> how to read it: through ``template``, or as ``<name>...</name>`` without one."""
    names = {block.span for block in blocks if block.span}
    if template is None:
        return {name: tag(name) for name in names}
    spec = get_template(template)
    missing = sorted(names - set(spec.span_names()))
    if missing:
        raise ConfigError(
            f"Reward 'rubric': rubric {rubric.name!r} reads the span(s) {', '.join(missing)}, which template "
            f"{template!r} does not have (its spans: {', '.join(spec.span_names())}); use a template with them, "
            "or set the reward's span option (all: the whole completion)."
        )
    return {name: spec.span(name) for name in names}


def _column_value(columns: dict, name: str, row: int):
    values = columns.get(name)
    return values[row] if isinstance(values, (list, tuple)) and row < len(values) else None


def _as_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def _clean(text: str) -> str:
    """``text`` without lone surrogates (they cannot be sent as UTF-8 JSON nor stored in SQLite)."""
    return text.encode("utf-8", "replace").decode("utf-8")
