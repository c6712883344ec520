"""Async client for an OpenAI-compatible judge server (``vllm serve``, ``transformers serve``).

One :class:`JudgeClient` holds the connection settings; each batch opens an
``httpx.AsyncClient`` on the running event loop (TRL runs async rewards on a daemon loop, a
synchronous caller on a fresh one), so nothing bound to a loop outlives the batch. Requests
run under a semaphore of ``max_concurrency``; transport errors, timeouts, HTTP 429 and 5xx are
retried with exponential backoff, other HTTP errors are not (a wrong model name or path does
not heal by waiting). :class:`JudgeCache` keeps the judge's answers in memory and, given a
path, in a SQLite file shared by every rank and run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sqlite3
import time
from collections import deque
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path

from rewards.errors import EnvironmentProblem

_RETRIABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
_MAX_BACKOFF_S = 30.0


class JudgeRequestError(Exception):
    """A judge request failed for good (after retries, or on an error that retrying cannot fix)."""

    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


@dataclass
class JudgeReply:
    """The judge's answer text and what it cost to get it."""

    text: str
    latency_s: float
    attempts: int


@dataclass
class RequestLog:
    """Client-side traffic counters: shows whether requests really overlapped."""

    in_flight: int = 0
    max_in_flight: int = 0
    retries: int = 0
    completed: int = 0
    # (start, end) of the latest requests; bounded so a long run does not grow it forever.
    intervals: deque = field(default_factory=lambda: deque(maxlen=10_000))


@dataclass
class JudgeClient:
    """Chat-completions settings for one judge server.

    ``model`` empty means "the first model the server lists" (asked once per client).
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
    extra_body: dict = field(default_factory=dict)
    log: RequestLog = field(default_factory=RequestLog)

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

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

    async def resolve_model(self, http) -> str:
        """The model name to send: ``model``, or the first id from ``GET /models``."""
        if self.model:
            return self.model
        response, _ = await self._with_retries(lambda: http.get(self.base_url.rstrip("/") + "/models"))
        models = response.json().get("data") or []
        if not models:
            raise JudgeRequestError(f"{self.base_url}/models lists no model", attempts=1)
        self.model = models[0]["id"]
        return self.model

    async def complete(self, http, semaphore: asyncio.Semaphore, messages: list[dict]) -> JudgeReply:
        """One chat completion under the semaphore, with retries; the assistant's text."""
        model = await self.resolve_model(http)
        body = {
            "model": model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **self.extra_body,
        }
        async with semaphore:
            started = time.perf_counter()
            response, attempts = await self._with_retries(lambda: http.post(self.chat_url, json=body))
            latency = time.perf_counter() - started
        try:
            text = response.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeRequestError(
                f"{self.chat_url} answered without choices[0].message.content: {response.text[:200]!r}",
                attempts,
            ) from None
        return JudgeReply(text=text, latency_s=latency, attempts=attempts)

    async def _with_retries(self, send) -> tuple:
        """``(response, attempts)``: call ``send()`` until a 2xx response; JudgeRequestError when out of tries."""
        import httpx

        attempt = 0
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.log.retries += 1
                await asyncio.sleep(self._delay(attempt))
            try:
                response = await self._timed(send)
            except httpx.HTTPError as problem:
                failure = f"{type(problem).__name__}: {problem or 'no detail'}"
                continue
            if response.status_code < 300:
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


def cache_key(*parts) -> str:
    """A stable key for a judge verdict: sha256 of the JSON of ``parts``.

    >>> cache_key("empathy", "m", "p", "c") == cache_key("empathy", "m", "p", "c")
    True
    >>> cache_key("empathy", "m", "p", "c") == cache_key("logic", "m", "p", "c")
    False
    """
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class JudgeCache:
    """The judge's answer texts by key: in memory, and in a SQLite file when given a path.

    Answers, not parsed scores, are kept: an answer without a valid verdict is as final as one
    with (the same question at temperature 0 gets the same answer), and parsing stays the
    reader's job.

    The file is opened per batch (a connection cannot cross threads, and TRL calls async rewards
    from its own loop thread) and written once per batch, so concurrent ranks rarely contend.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.memory: dict[str, str] = {}
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as db, db:
                db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30.0)

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The cached answers among ``keys`` (memory first, then the file)."""
        found = {key: self.memory[key] for key in keys if key in self.memory}
        missing = [key for key in keys if key not in found]
        if self.path and missing:
            with closing(self._connect()) as db:
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk)
                    for key, answer in rows:
                        found[key] = self.memory[key] = answer
        return found

    def put_many(self, answers: dict[str, str]) -> None:
        """Store ``answers`` (key -> the judge's answer text)."""
        self.memory.update(answers)
        if self.path and answers:
            with closing(self._connect()) as db, db:
                db.executemany("INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)", list(answers.items()))


# A paged KV cache of 64 blocks and 2048 tokens per forward pass: 1.9 GB resident for the 135M
# model, room for several ~500-token judge prompts at once (more requests queue).
CB_FLAGS = ("--cb-num-blocks", "64", "--cb-max-batch-tokens", "2048")


class LocalJudgeServer:
    """``transformers serve MODEL`` on 127.0.0.1, the CPU stand-in for ``vllm serve`` (tests, bench, demo).

    ``continuous_batching`` turns on the server's paged-attention batching; without it the
    server runs one ``generate`` at a time. Its KV cache is bounded by CB_FLAGS: on a CPU
    `transformers serve` otherwise sizes the cache from the machine's whole RAM (measured: 13.7 GB
    resident for the 135M model, and the OOM killer took it). ``threads`` sets OMP_NUM_THREADS:
    on a CPU shared with other jobs one thread was 3-4x faster than torch's default (measured:
    ~6 s instead of 20-40 s per judge request on a loaded 2-core machine).
    ``start()`` blocks until ``/health`` answers.
    """

    def __init__(self, model: str, port: int | None = None, continuous_batching: bool = True,
                 threads: int | None = None, log_path=None):  # fmt: skip
        self.model = model
        self.port = port or free_port()
        self.continuous_batching = continuous_batching
        self.threads = threads
        self.log_path = Path(log_path) if log_path else None
        self.process = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        import shutil
        import sys

        executable = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
        batching = ["--continuous-batching", *CB_FLAGS] if self.continuous_batching else ["--no-continuous-batching"]
        return [executable, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                "--device", "cpu", *batching, "--log-level", "info"]  # fmt: skip

    def start(self, timeout: float = 180.0) -> LocalJudgeServer:
        import os
        import subprocess

        env = {**os.environ, **({"OMP_NUM_THREADS": str(self.threads)} if self.threads else {})}
        with open(self.log_path or os.devnull, "ab") as log:
            # The child keeps its own copy of the log's descriptor; ours can close now.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise EnvironmentProblem(
                    f"`{' '.join(self.command())}` exited with code {self.process.returncode}{where}. "
                    "If `transformers serve` is missing its dependencies: pip install 'affect-rl[serving]'"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise EnvironmentProblem(f"The local judge on port {self.port} did not answer /health within {timeout:.0f} s.")

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as a crashed judge node would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        import subprocess

        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LocalJudgeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
