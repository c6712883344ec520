"""Judge throughput: sequential vs concurrent requests to a local judge, and the cache effect.

    python bench/judge.py [--samples 8] [--concurrency 4] [--max-tokens 40] [--batching both|on|off] [--threads 1]
    python bench/judge.py --base-url http://judge-node:8000/v1 --model Qwen/Qwen2.5-7B-Instruct

Without ``--base-url`` the script starts ``transformers serve`` on 127.0.0.1 with the default
SmolLM2-135M checkpoint, once with continuous batching and once without (``--batching``). For
each server it scores ``--samples`` distinct empathy completions with the ``rubric`` reward
(cache off) at concurrency 1 and at ``--concurrency``, then the same batch twice with the cache
on. It prints wall times, the speed-up (goal: >= 0.7 * N where the server batches), the
client's peak number of requests in flight and how much of the concurrent run had two or more
requests open at once (the proof that the client does issue them concurrently, whatever the
server does with them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import rewards
from affect_rl.models import resolve_model_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from judge_server import LocalJudgeServer  # noqa: E402  (the process manager the integration tests use)

REPLIES = [
    "I'm so sorry. Twelve years is a lifetime together; it makes sense that it hurts this much.",
    "That sounds exhausting. Do you want to talk about what happened at work?",
    "Congratulations! You worked hard for this and you should be proud.",
    "Buy a new one, problem solved.",
    "It is normal to feel nervous before an exam. What part worries you most?",
    "I hear how lonely the move has been. Have you found any place that feels like yours yet?",
    "Whatever. Everyone has problems.",
    "Losing a job is a shock. Be gentle with yourself this week.",
    "You must be thrilled about the baby! How are you feeling?",
    "I understand your anger; being lied to by a friend is a betrayal.",
]


def batch(samples: int) -> tuple[list, list]:
    prompts = [
        [{"role": "user", "content": f"Speaker: something happened to me today (case {i})."}] for i in range(samples)
    ]
    completions = [
        "<|understanding_begin|>feels hurt<|understanding_end|>\n<|reasoning_begin|>validate<|reasoning_end|>\n"
        f"<|emotion_begin|>sad<|emotion_end|>\n<|response_begin|>{REPLIES[i % len(REPLIES)]} ({i})<|response_end|>"
        for i in range(samples)
    ]
    return prompts, completions


def overlap_share(intervals: list[tuple[float, float]]) -> float:
    """Share of the time between the first start and the last end with >= 2 requests open."""
    if len(intervals) < 2:
        return 0.0
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now, overlapped, previous = 0, 0.0, events[0][0]
    for moment, change in events:
        if open_now >= 2:
            overlapped += moment - previous
        open_now += change
        previous = moment
    span = max(end for _, end in intervals) - min(start for start, _ in intervals)
    return overlapped / span if span else 0.0


def timed(reward, prompts, completions) -> float:
    started = time.perf_counter()
    scores = reward.call_sync(prompts, completions)
    elapsed = time.perf_counter() - started
    failed = sum(score is None for score in scores)
    if reward.stats.request_failures:
        raise SystemExit(f"judge requests failed: {[s.error for s in reward.last_batch if s.error][:2]}")
    print(f"    {len(scores)} samples in {elapsed:.2f} s ({failed} without a verdict)", flush=True)
    return elapsed


def judge(base_url: str, model: str, args, **options):
    """The judge object of a rubric reward (call_sync, stats, client)."""
    options = {"base_url": base_url, "model": model, "max_tokens": args.max_tokens, "timeout": 600.0,
               "base_url_env": "", **options}  # fmt: skip
    return rewards.build("rubric", **options).judge


def run(base_url: str, model: str, args) -> dict:
    prompts, completions = batch(args.samples)
    warm = judge(base_url, model, args, cache=False, max_concurrency=args.concurrency)
    warm.call_sync(prompts[:1], completions[:1])  # model load, CB cache allocation
    print("  sequential (concurrency 1):")
    sequential = timed(judge(base_url, model, args, cache=False, max_concurrency=1), prompts, completions)
    print(f"  concurrent (concurrency {args.concurrency}):")
    concurrent_reward = judge(base_url, model, args, cache=False, max_concurrency=args.concurrency)
    concurrent = timed(concurrent_reward, prompts, completions)
    log = concurrent_reward.client.log
    print("  cache: first pass, then the same batch again:")
    cached_reward = judge(base_url, model, args, cache=True, max_concurrency=args.concurrency)
    cold = timed(cached_reward, prompts, completions)
    warm_pass = timed(cached_reward, prompts, completions)
    latencies = sorted(end - start for start, end in log.intervals)
    return {
        "sequential_s": round(sequential, 2),
        "concurrent_s": round(concurrent, 2),
        "speedup": round(sequential / concurrent, 2),
        "goal_speedup": round(0.7 * args.concurrency, 2),
        "client_max_in_flight": log.max_in_flight,
        "client_overlap_share": round(overlap_share(log.intervals), 2),
        "concurrent_request_latencies_s": [round(x, 2) for x in latencies],
        "cache_cold_s": round(cold, 2),
        "cache_warm_s": round(warm_pass, 4),
        "cache_hit_rate_second_pass": cached_reward.stats.cache_hits / args.samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=40)
    parser.add_argument("--batching", choices=["both", "on", "off"], default="both")
    parser.add_argument("--base-url", default="", help="an already running judge; default: start a local one")
    parser.add_argument("--model", default="", help="the served model name (default: the server's first)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the local server")
    parser.add_argument("--log", default="bench-judge-server.log", help="the local server's log file")
    args = parser.parse_args()

    results = {}
    if args.base_url:
        results["remote"] = run(args.base_url, args.model, args)
    else:
        model_path = resolve_model_path("smollm2-135m-instruct")
        modes = {"both": [True, False], "on": [True], "off": [False]}[args.batching]
        for batching in modes:
            label = "continuous_batching" if batching else "sequential_server"
            print(f"transformers serve ({label}):", flush=True)
            with LocalJudgeServer(
                model_path, continuous_batching=batching, threads=args.threads, log_path=args.log
            ) as server:
                results[label] = run(server.base_url, model_path, args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
