#!/usr/bin/env python3
"""gpu_check_verify.py RESULTS.jsonl — the assertion of `make gpu-bundle-check`: every line of
tools/gpu_check.sh's results is a check object whose status is "pass" or "skip", every check is
there once, in order, and every skip and fail names its reason. Exit 1 (naming the line) if not.
On a machine without a GPU this proves the skip path; with a GPU, that the whole proof passed."""
import json
import sys

CHECKS = ["environment", "cuda_ops", "cuda_ops_memcheck", "train_step", "ci_recipe_cuda",
          "benchmark", "benchmark_kernels_step"]


def main(path):
    problems, seen = [], []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            try:
                r = json.loads(line)
            except ValueError as e:
                problems.append("line %d is not JSON: %s" % (i, e))
                continue
            name, status = r.get("check"), r.get("status")
            seen.append(name)
            if status not in ("pass", "skip"):
                problems.append("line %d: %s is %r: %s" % (i, name, status, r.get("reason")))
            if status in ("skip", "fail") and not r.get("reason"):
                problems.append("line %d: %s says %s without a reason" % (i, name, status))
    if seen != CHECKS:
        problems.append("checks %s, expected %s" % (seen, CHECKS))
    for p in problems:
        print("gpu-bundle-check: " + p)
    if not problems:
        print("gpu-bundle-check: %d checks, all pass or skip, each skip with its reason" % len(seen))
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gpu_check_verify.py RESULTS.jsonl")
    sys.exit(main(sys.argv[1]))
