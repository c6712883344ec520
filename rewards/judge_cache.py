"""The judge's answers by request: in memory, and in a SQLite file shared by every rank and run.

The key (:func:`cache_key`) is a hash of the whole chat request (messages, temperature,
max_tokens and any other field) with the model name replaced by the identity of the weights the
server reported, so a changed prompt, sampling setting or judge never reads another's answer.
Only answers that held a verdict and were not cut at ``max_tokens`` are stored (the rubric
reward decides); failures are asked again next time.

A cache file that cannot be used (locked past ``timeout``, corrupt, not a database, not
writable) does not stop training: the cache logs one warning naming the file and the fix, then
goes on in memory only. The file is opened per batch (a connection cannot cross threads, and
TRL calls async rewards from its own loop thread) and written once per batch, so concurrent
ranks rarely contend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from contextlib import closing
from pathlib import Path

logger = logging.getLogger(__name__)


def cache_key(identity: str, body: dict) -> str:
    """The key of a chat request ``body`` sent to the model whose weights are ``identity``.

    >>> body = {"model": "judge", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0}
    >>> cache_key("Qwen/Qwen2.5-7B", body) == cache_key("Qwen/Qwen2.5-7B", dict(body))
    True
    >>> cache_key("Qwen/Qwen2.5-7B", body) == cache_key("Qwen/Qwen2.5-7B", {**body, "temperature": 0.7})
    False
    """
    request = json.dumps({**body, "model": identity}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(request.encode("utf-8", "replace")).hexdigest()


class JudgeCache:
    """Answer texts by key: in memory, and in a SQLite file when given a path."""

    def __init__(self, path: str | Path | None = None, timeout: float = 30.0):
        self.path = Path(path) if path else None
        self.timeout = timeout  # seconds to wait for another rank's lock before giving the file up
        self.memory: dict[str, str] = {}
        if self.path:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as problem:
                self._give_up(problem)
            create = "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)"
            self._use_file(lambda db: db.execute(create), write=True)

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The cached answers among ``keys`` (memory first, then the file)."""
        found = {key: self.memory[key] for key in keys if key in self.memory}
        missing = [key for key in keys if key not in found]
        if missing:
            for key, answer in self._use_file(lambda db: _select(db, missing)) or []:
                found[key] = self.memory[key] = answer
        return found

    def put_many(self, answers: dict[str, str]) -> None:
        """Store ``answers`` (key -> the judge's answer text)."""
        self.memory.update(answers)
        if answers:
            insert = "INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)"
            self._use_file(lambda db: db.executemany(insert, list(answers.items())), write=True)

    def _use_file(self, operation, write: bool = False):
        """``operation(connection)``'s result, or None without a usable file (the first failure warns)."""
        if self.path is None:
            return None
        try:
            with closing(sqlite3.connect(self.path, timeout=self.timeout)) as db:
                if write:
                    with db:  # one transaction, committed on success
                        return operation(db)
                return operation(db)
        except (sqlite3.Error, OSError) as problem:
            self._give_up(problem)
            return None

    def _give_up(self, problem: Exception) -> None:
        logger.warning(
            "The judge cache file %s cannot be used (%s: %s); continuing with an in-memory cache for this run. "
            "Move or delete the file, or give the reward another cache path (cache: true keeps it in memory).",
            self.path, type(problem).__name__, problem,
        )  # fmt: skip
        self.path = None


def _select(db: sqlite3.Connection, keys: list[str]) -> list[tuple[str, str]]:
    rows = []
    for start in range(0, len(keys), 500):  # SQLite caps the number of ? parameters
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows += db.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk).fetchall()
    return [(key, answer) for key, answer in rows if isinstance(answer, str)]
