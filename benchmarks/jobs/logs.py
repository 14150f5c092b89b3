"""Log analysis: 48 blocks of web-server log text (str, about 3.75 MB each, 180 MB in
all), each scanned with regular expressions: requests per level, status and path, and
the total of the durations."""
import collections
import random
import re

from _jobrun import cached_text, main

LINE = re.compile(r"^\S+ (\S+) app\[\d+\]: (\w+) (GET|POST|PUT|DELETE) (/\S*) (\d{3}) (\d+)ms",
                  re.M)
BLOCKS = 48
BLOCK_CHARS = 3_750_000


def generate(n_chars, seed):
    rnd = random.Random(seed)
    paths = [f"/api/v1/{r}/{{}}" for r in ("items", "users", "orders", "search", "cart")]
    levels = ["INFO"] * 8 + ["WARN", "ERROR"]
    lines, size = [], 0
    while size < n_chars:
        line = (f"2026-12-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:"
                f"{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}Z host-{rnd.randint(1, 40)} "
                f"app[{rnd.randint(100, 9999)}]: {rnd.choice(levels)} "
                f"{rnd.choice(('GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'))} "
                f"{rnd.choice(paths).format(rnd.randint(1, 500))} "
                f"{rnd.choice((200, 200, 200, 201, 204, 301, 404, 500))} "
                f"{rnd.randint(1, 900)}ms user={rnd.choice(('alice', 'bob', 'carol'))}")
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


def task(block):
    levels, status, paths = collections.Counter(), collections.Counter(), collections.Counter()
    total_ms = 0
    for _host, level, _method, path, code, ms in LINE.findall(block):
        levels[level] += 1
        status[code] += 1
        paths[path.rsplit("/", 1)[0]] += 1
        total_ms += int(ms)
    return levels, status, paths, total_ms


def make_items(scale, variant=0):
    n = max(2, round(BLOCKS * scale))
    text = cached_text(f"logs-{BLOCK_CHARS}-{n}.txt",
                       lambda: "".join(generate(BLOCK_CHARS, i) for i in range(n)))
    # cut at line ends, about BLOCK_CHARS each
    blocks, start = [], 0
    for _ in range(n):
        end = text.find("\n", start + BLOCK_CHARS - 200) + 1 or len(text)
        blocks.append(text[start:end])
        start = end
    return blocks


def summary(results):
    levels, status, paths = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for lv, st, pa, ms in results:
        levels.update(lv)
        status.update(st)
        paths.update(pa)
        total += ms
    return sorted(levels.items()), sorted(status.items()), sorted(paths.items()), total


if __name__ == "__main__":
    raise SystemExit(main(task, make_items, summary))
