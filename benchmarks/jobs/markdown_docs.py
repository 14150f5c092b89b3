"""Markdown: 600 documents (headings, lists, tables, fenced code, links) rendered to
HTML with python-markdown; the HTML (str) comes back."""
import hashlib
import random

import markdown

from _jobrun import main

DOCS = 600
WORDS = "alpha beta gamma delta render parse table list code link item value".split()


def document(seed):
    rnd = random.Random(seed)
    out = [f"# Page {seed}", ""]
    for s in range(rnd.randint(2, 6)):
        out += [f"## {rnd.choice(WORDS).title()} {s}", ""]
        for _ in range(rnd.randint(1, 3)):
            words = [rnd.choice(WORDS) for _ in range(rnd.randint(20, 60))]
            words[rnd.randrange(len(words))] = f"[{rnd.choice(WORDS)}](https://example.org/{seed})"
            words[rnd.randrange(len(words))] = f"**{rnd.choice(WORDS)}**"
            out += [" ".join(words), ""]
        out += [f"* {rnd.choice(WORDS)} `{rnd.choice(WORDS)}()`" for _ in range(rnd.randint(2, 5))]
        out += ["", "| name | value |", "| --- | --- |"]
        out += [f"| {rnd.choice(WORDS)} | {rnd.randint(0, 99)} |" for _ in range(3)] + [""]
        out += ["```python", f"x = {rnd.randint(0, 9)}", "```", ""]
    return "\n".join(out)


def task(text):
    return markdown.markdown(text, extensions=["tables", "fenced_code", "toc"])


def make_items(scale, variant=0):
    n = max(2, round(DOCS * scale))
    return [document(i + variant * n) for i in range(n)]


def summary(results):
    return [(len(html), hashlib.sha256(html.encode()).hexdigest()[:12]) for html in results]


if __name__ == "__main__":
    raise SystemExit(main(task, make_items, summary))
