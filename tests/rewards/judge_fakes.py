"""A scripted OpenAI-compatible judge on 127.0.0.1 for the rubric reward's unit and fault tests.

A real HTTP server in a thread, so the real client code runs (httpx, retries, timeouts, JSON
checks); the script decides each answer. The real judge (`transformers serve`) is in
tests/integration.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rewards


@dataclass
class Reply:
    """One scripted answer to a chat request."""

    content: str | None = ""
    status: int = 200
    finish_reason: str | None = "stop"
    model: str | None = None  # default: the requested model
    delay: float = 0.0
    raw: bytes | None = None  # sent as the body instead of a chat completion


MODELS = {"object": "list", "data": [{"id": "fake", "object": "model", "root": "org/fake-weights-v1"}]}


class FakeJudge:
    """Answers ``POST /v1/chat/completions`` from ``script(body) -> Reply | (status, content)``.

    ``models`` is what ``GET /v1/models`` answers (a JSON value, raw bytes, or an int status);
    ``health`` is the status of ``GET /health``. ``bodies`` (and ``authorizations``, their
    Authorization headers) hold every chat request received; ``gets`` every GET path.
    """

    def __init__(self, script, models=MODELS, health: int = 200):
        self.script = script
        self.models = models
        self.health = health
        self.bodies: list[dict] = []
        self.gets: list[str] = []
        self.authorizations: list[str | None] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                judge.gets.append(self.path)
                if self.path.endswith("/health"):
                    self._send(judge.health, b"{}")
                elif self.path.endswith("/models"):
                    if isinstance(judge.models, int):
                        self._send(judge.models, b'{"error": "no"}')
                    else:
                        raw = judge.models if isinstance(judge.models, bytes) else json.dumps(judge.models).encode()
                        self._send(200, raw)
                else:
                    self._send(404, b"{}")

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                judge.bodies.append(body)
                judge.authorizations.append(self.headers.get("Authorization"))
                reply = judge.script(body)
                if isinstance(reply, tuple):
                    reply = Reply(status=reply[0], content=reply[1])
                time.sleep(reply.delay)
                if reply.raw is not None:
                    raw = reply.raw
                elif reply.status != 200:
                    raw = json.dumps({"error": reply.content}).encode()
                else:
                    message = {"role": "assistant", "content": reply.content}
                    choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason}
                    raw = json.dumps({"model": reply.model or body["model"], "choices": [choice]}).encode()
                try:
                    self._send(reply.status, raw)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def _send(self, status: int, raw: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_judge():
    """``fake_judge(script, models=..., health=...)`` -> a running FakeJudge, closed after the test."""
    judges = []

    def start(script, **options):
        judges.append(FakeJudge(script, **options))
        return judges[-1]

    yield start
    for judge in judges:
        judge.close()


def verdict(**scores) -> str:
    return json.dumps(scores)


EMPATHY_KEYS = ["relevance", "empathy", "persona_consistency", "safety", "fluency"]
ALL_FOURS = verdict(**dict.fromkeys(EMPATHY_KEYS, 4))


def kardia(reply: str) -> str:
    """A kardia-template completion (Kardia-R1's special-token spans) whose response is ``reply``."""
    return ("<|understanding_begin|>sad<|understanding_end|>\n<|reasoning_begin|>comfort<|reasoning_end|>\n"
            f"<|emotion_begin|>sad<|emotion_end|>\n<|response_begin|>{reply}<|response_end|>")  # fmt: skip


def build_fn(judge: FakeJudge, **options):
    """The reward function, as a recipe builds it, pointed at ``judge``."""
    options = {"base_url": judge.url, "model": "fake", "backoff": 0.0, "max_retries": 2, "base_url_env": "", **options}
    return rewards.build("rubric", **options)


def build(judge: FakeJudge, **options):
    """The judge object behind the reward function (call_sync, stats, last_batch, client)."""
    return build_fn(judge, **options).judge
