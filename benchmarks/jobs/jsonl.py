"""JSON lines: 64 chunks of events (bytes, about 2.9 MB each, 183 MB in all), each
parsed line by line with json.loads and aggregated per kind and country."""
import collections
import json
import random

from _jobrun import cached_text, main

CHUNKS = 64
CHUNK_BYTES = 2_900_000


def generate(n_bytes, seed):
    rnd = random.Random(seed)
    lines, size = [], 0
    while size < n_bytes:
        event = {"id": rnd.randint(1, 10**9), "kind": rnd.choice(("view", "click", "buy")),
                 "country": rnd.choice(("de", "fr", "br", "jp", "us", "in")),
                 "amount": round(rnd.random() * 100, 2),
                 "tags": [rnd.choice("abcdefgh") for _ in range(rnd.randint(0, 4))],
                 "user": {"name": f"user{rnd.randint(1, 5000)}", "age": rnd.randint(16, 90)}}
        line = json.dumps(event)
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


def task(chunk):
    count, amount = collections.Counter(), collections.Counter()
    ages = 0
    for line in chunk.splitlines():
        event = json.loads(line)
        key = (event["kind"], event["country"])
        count[key] += 1
        amount[key] += event["amount"]
        ages += event["user"]["age"]
    return count, {k: round(v, 2) for k, v in amount.items()}, ages


def make_items(scale, variant=0):
    n = max(2, round(CHUNKS * scale))
    text = cached_text(f"jsonl-{CHUNK_BYTES}-{n}.txt",
                       lambda: "".join(generate(CHUNK_BYTES, i) for i in range(n)))
    data = text.encode()
    chunks, start = [], 0
    for _ in range(n):
        end = data.find(b"\n", start + CHUNK_BYTES - 300) + 1 or len(data)
        chunks.append(data[start:end])
        start = end
    return chunks


def summary(results):
    count, amount, ages = collections.Counter(), collections.Counter(), 0
    for c, a, g in results:
        count.update(c)
        for k, v in a.items():
            amount[k] += v
        ages += g
    return sorted(count.items()), sorted((k, round(v, 2)) for k, v in amount.items()), ages


if __name__ == "__main__":
    raise SystemExit(main(task, make_items, summary))
