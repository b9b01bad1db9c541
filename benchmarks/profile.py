"""Summarises a py-spy collapsed-stack file: ``python -m benchmarks.profile FILE [N]``.

Prints the functions with the most samples on the CPU themselves (self) and under them
(total), which is what the performance notes in benchmarks/README.md quote.
"""

from __future__ import annotations

import sys
from collections import Counter


def summarise(path: str, top: int = 25) -> str:
    self_count: Counter[str] = Counter()
    total_count: Counter[str] = Counter()
    samples = 0
    with open(path) as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            frames = [fr for fr in stack.split(";") if fr]
            if frames and frames[0].startswith("process"):
                frames = frames[1:]
            if frames and frames[0].startswith("thread"):
                frames = frames[1:]
            if not frames:
                continue
            samples += count
            self_count[frames[-1]] += count
            for frame in set(frames):
                total_count[frame] += count
    lines = [f"{samples} samples", "", "self:"]
    for frame, count in self_count.most_common(top):
        lines.append(f"{100 * count / samples:6.1f}%  {frame}")
    lines += ["", "total:"]
    for frame, count in total_count.most_common(top):
        lines.append(f"{100 * count / samples:6.1f}%  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25))
