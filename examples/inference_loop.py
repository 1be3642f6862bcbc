#!/usr/bin/env python3
"""A sample inference loop reporting request spans to a running `wattprint agent`.

Standard library only. Simulates a server handling requests of varying length (busy-looping
the CPU for each request, so RAPL sees the work), reports each request's span with its token
count and labels in batches, then prints the agent's per-request summary.

    wattprint agent --zone FR &
    python3 examples/inference_loop.py --requests 50 --agent http://127.0.0.1:9464
"""

import argparse
import json
import os
import random
import time
import urllib.request


def post(agent, path, body, token=None):
    req = urllib.request.Request(
        agent + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def get(agent, path, token=None):
    req = urllib.request.Request(agent + path)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def fake_inference(tokens):
    """Burn CPU in proportion to the tokens 'generated'."""
    x = 0
    for i in range(tokens * 2000):
        x = (x * 31 + i) % 1000003
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", default="http://127.0.0.1:9464")
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--model", default="demo-7b")
    p.add_argument("--batch", type=int, default=8, help="spans per POST")
    p.add_argument("--token-file", help="bearer token file, when the agent requires one")
    p.add_argument("--wait", type=float, default=15.0, help="seconds to wait for attribution")
    a = p.parse_args()
    token = open(a.token_file).read().strip() if a.token_file else None

    window = post(a.agent, "/v1/windows", {"name": "inference-loop", "labels": {"model": a.model}}, token)
    rng = random.Random(42)
    pending, total_tokens = [], 0
    for k in range(a.requests):
        tokens = rng.randint(16, 256)
        start = time.time()
        fake_inference(tokens)
        end = time.time()
        total_tokens += tokens
        pending.append({
            "start_unix_s": start, "end_unix_s": end, "tokens": tokens,
            "labels": {"model": a.model, "route": "/v1/chat" if k % 3 else "/v1/complete"},
        })
        if len(pending) >= a.batch:
            post(a.agent, "/v1/spans", pending, token)
            pending = []
        time.sleep(rng.uniform(0.0, 0.05))  # idle gaps between requests: reported apart
    if pending:
        post(a.agent, "/v1/spans", pending, token)
    report = post(a.agent, "/v1/windows/%d/end" % window["id"],
                  {"inferences": a.requests, "tokens": total_tokens}, token)
    print("window: %.3f J, %.6f gCO2e, %s J/token" % (
        report["energy"]["total_j"], report["carbon"]["total_g"], report["metrics"]["joules_per_token"]))

    # Spans are attributed once their time is settled (the agent's --settle-lag).
    deadline = time.time() + a.wait
    while True:
        s = get(a.agent, "/v1/requests/summary", token)
        mine = [b for b in s["by_labels"] if b["labels"].get("model") == a.model]
        done = sum(b["requests"] for b in mine)
        if done >= a.requests or time.time() > deadline:
            break
        time.sleep(0.5)
    summ = s["summary"]
    print("requests attributed: %d of %d (pending %d)" % (done, a.requests, s["pending_spans"]))
    print("energy attributed to %s: %.3f J (%.6f gCO2e); idle, not attributed: %.3f J" % (
        a.model, sum(b["energy_j"] for b in mine), sum(b["carbon_g"] for b in mine), s["idle_j"]))
    jpr, jpk = summ["joules_per_request"], summ["joules_per_1k_tokens"]
    print("J per request: p50 %s p90 %s p99 %s" % (jpr["p50"], jpr["p90"], jpr["p99"]))
    print("J per 1k tokens: p50 %s p90 %s" % (jpk["p50"], jpk["p90"]))
    return 0 if done >= a.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
