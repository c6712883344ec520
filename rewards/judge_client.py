"""Async HTTP client for an OpenAI-compatible judge server (``vllm serve``, ``transformers serve``).

One :class:`JudgeClient` holds the connection settings; each batch opens an
``httpx.AsyncClient`` on the running event loop (TRL runs async rewards on a daemon loop, a
synchronous caller on a fresh one), so nothing bound to a loop outlives the batch. Requests
run under a semaphore of ``max_concurrency``; transport errors, timeouts, HTTP 429 and 5xx are
retried with exponential backoff, other HTTP errors are not (a wrong model name or path does
not heal by waiting). Every failure, including an answer that is not JSON or not shaped like a
chat completion, is a :class:`JudgeRequestError`, which the rubric reward turns into its
``on_error`` policy.

Each batch first asks ``GET /models`` which model the server really serves
(:meth:`JudgeClient.served_model`): the name to send, and the identity of the weights behind it
(vLLM's ``root``), which the cache keys on. The API key is sent as a bearer header and appears
in no message.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from rewards.errors import EnvironmentProblem

_RETRIABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
_MAX_BACKOFF_S = 30.0


class JudgeRequestError(Exception):
    """A judge request failed for good (after retries, or on an error that retrying cannot fix)."""

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class ServedModel:
    """The model a server answers with: ``name`` to send, ``identity`` of the weights behind it."""

    name: str
    identity: str


@dataclass
class JudgeReply:
    """The judge's answer text, why it stopped, the model that wrote it, and what it cost."""

    text: str
    finish_reason: str | None
    model: str | None
    latency_s: float


@dataclass
class RequestLog:
    """Client-side traffic counters: whether chat requests really overlapped, and all retries."""

    in_flight: int = 0
    max_in_flight: int = 0
    retries: int = 0
    completed: int = 0
    # (start, end) of the latest requests; bounded so a long run does not grow it forever.
    intervals: deque = field(default_factory=lambda: deque(maxlen=10_000))


@dataclass
class JudgeClient:
    """Chat-completions settings for one judge server.

    ``model`` empty means "the first model the server lists".
    """

    base_url: str
    model: str = ""
    api_key: str | None = None
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 1.0
    max_concurrency: int = 8
    temperature: float = 0.0
    max_tokens: int = 256
    log: RequestLog = field(default_factory=RequestLog)

    def __repr__(self) -> str:  # never show the key
        return f"JudgeClient(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    @property
    def models_url(self) -> str:
        return self.base_url.rstrip("/") + "/models"

    @property
    def health_url(self) -> str:
        """``/health`` at the server's root (vLLM and ``transformers serve`` answer it)."""
        root = self.base_url.rstrip("/")
        return (root[: -len("/v1")] if root.endswith("/v1") else root) + "/health"

    def request_body(self, model: str, messages: list[dict]) -> dict:
        """Every parameter of a chat request; the cache keys on all of it."""
        return {"model": model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens}

    @asynccontextmanager
    async def session(self):
        """An ``httpx.AsyncClient`` and a semaphore for one batch, bound to the running loop."""
        try:
            import httpx
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise EnvironmentProblem(
                "The rubric reward needs httpx to reach the judge server. Install it with: "
                "pip install 'affect-rl[serving]'"
            ) from None
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))
        async with httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits) as http:
            yield http, asyncio.Semaphore(self.max_concurrency)

    async def served_model(self, http) -> ServedModel:
        """The configured model (or the first listed) as ``GET /models`` lists it.

        A server without a model list (404) is taken at its word for a configured name.
        """
        response, _ = await self._with_retries(lambda: http.get(self.models_url), timed=False, accept={404})
        if response.status_code == 404:
            if self.model:
                return ServedModel(self.model, self.model)
            raise JudgeRequestError(f"{self.models_url} does not exist (HTTP 404), so the model must be named: set "
                                    "the reward's model option")  # fmt: skip
        entries = _model_entries(response)
        if entries is None:
            raise JudgeRequestError(
                f"{self.models_url} answered something that is not an OpenAI model list: {response.text[:200]!r}; "
                "is base_url the API root of an OpenAI-compatible server (e.g. http://HOST:8000/v1)?"
            )
        if not entries:
            raise JudgeRequestError(f"{self.models_url} lists no model")
        if self.model:
            entry = next((entry for entry in entries if entry["id"] == self.model), None)
            if entry is None:
                served = ", ".join(entry["id"] for entry in entries[:10])
                raise JudgeRequestError(f"the server does not serve the model {self.model!r}; {self.models_url} "
                                        f"lists: {served}. Set the reward's model to one of them")  # fmt: skip
        else:
            entry = entries[0]
        root = entry.get("root")
        return ServedModel(entry["id"], root if isinstance(root, str) and root else entry["id"])

    async def complete(self, http, semaphore: asyncio.Semaphore, body: dict) -> JudgeReply:
        """One chat completion of ``body`` under the semaphore, with retries."""
        async with semaphore:
            started = time.perf_counter()
            response, attempts = await self._with_retries(lambda: http.post(self.chat_url, json=body))
            latency = time.perf_counter() - started
        payload = _json_or_none(response)
        choice = _first_choice(payload)
        if choice is None:
            raise JudgeRequestError(
                f"{self.chat_url} answered something that is not a chat completion (no choices[0].message.content "
                f"string): {response.text[:200]!r}",
                attempts,
            )
        model = payload.get("model")
        return JudgeReply(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
            model=model if isinstance(model, str) else None,
            latency_s=latency,
        )

    async def health(self, http) -> str | None:
        """None when the server answers ``/health`` (or, lacking one, ``/models``); else what is wrong."""
        import httpx

        for url in (self.health_url, self.models_url):
            try:
                response = await http.get(url, timeout=min(self.timeout, 10.0))
            except httpx.HTTPError as problem:
                return f"GET {url} failed: {_describe(problem)}"
            if response.status_code == 404 and url == self.health_url:
                continue  # no /health on this server: ask the model list instead
            return None if response.status_code < 300 else f"GET {url} answered HTTP {response.status_code}"
        return None

    async def _with_retries(self, send, timed: bool = True, accept=frozenset()) -> tuple:
        """``(response, attempts)``: call ``send()`` until a 2xx (or ``accept``ed) response;
        JudgeRequestError when out of tries. ``timed``: a chat request, kept in the traffic log."""
        import httpx

        attempt = 0
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.log.retries += 1
                await asyncio.sleep(self._delay(attempt))
            try:
                response = await (self._timed(send) if timed else send())
            except httpx.HTTPError as problem:
                failure = _describe(problem)
                continue
            if response.status_code < 300 or response.status_code in accept:
                return response, attempt + 1
            failure = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code not in _RETRIABLE_STATUS:
                break
        raise JudgeRequestError(failure, attempts=attempt + 1)

    async def _timed(self, send):
        """Send one request, keeping the in-flight counter and the request's interval."""
        self.log.in_flight += 1
        self.log.max_in_flight = max(self.log.max_in_flight, self.log.in_flight)
        started = time.perf_counter()
        try:
            response = await send()
        finally:
            self.log.in_flight -= 1
        self.log.intervals.append((started, time.perf_counter()))
        self.log.completed += 1
        return response

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with up to 25% jitter, so retries of a whole batch do not arrive in lockstep."""
        return min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF_S) * (1.0 + 0.25 * random.random())


def _describe(problem: Exception) -> str:
    return f"{type(problem).__name__}: {problem or 'no detail'}"


def _json_or_none(response) -> dict:
    """The response's JSON object, or {} when it is not JSON (or nested past the recursion limit)."""
    try:
        payload = response.json()
    except (ValueError, RecursionError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _first_choice(payload: dict) -> dict | None:
    """``choices[0]`` of a chat completion when its ``message.content`` is a string (or null)."""
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    if not isinstance(message, dict) or not isinstance(message.get("content"), (str, type(None))):
        return None
    return choices[0]


def _model_entries(response) -> list[dict] | None:
    """The ``data`` of an OpenAI model list (entries with a string ``id``), or None if it is not one."""
    data = _json_or_none(response).get("data")
    if not isinstance(data, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in data):
        return None
    return data
