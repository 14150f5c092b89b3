"""Documentation: 160 reStructuredText documents (sections, lists, tables, literal
blocks, inline markup), each published to HTML with docutils; the HTML (bytes) comes
back."""
import hashlib
import random

from docutils.core import publish_string

from _jobrun import main

DOCS = 160
WORDS = ("interpreter queue lock event buffer module thread call result value pool "
         "worker task data cache import signal memory close start").split()


def sentence(rnd):
    words = [rnd.choice(WORDS) for _ in range(rnd.randint(6, 16))]
    i = rnd.randrange(len(words))
    words[i] = rnd.choice((f"*{words[i]}*", f"**{words[i]}**", f"``{words[i]}()``"))
    return " ".join(words).capitalize() + "."


def document(seed):
    rnd = random.Random(seed)
    title = f"Document {seed}"
    out = [title, "=" * len(title), ""]
    for s in range(rnd.randint(3, 8)):
        head = f"Section {s}: {rnd.choice(WORDS)}"
        out += [head, "-" * len(head), ""]
        for _ in range(rnd.randint(1, 4)):
            out += [" ".join(sentence(rnd) for _ in range(rnd.randint(2, 6))), ""]
        out += [f"- {sentence(rnd)}" for _ in range(rnd.randint(2, 6))] + [""]
        if rnd.random() < 0.5:
            out += ["::", ""] + [f"    x{i} = call({i})" for i in range(rnd.randint(2, 8))] + [""]
        if rnd.random() < 0.5:
            out += ["=========  ======", "name       value", "=========  ======"]
            out += [f"{rnd.choice(WORDS):<9}  {rnd.randint(0, 999):<6}" for _ in range(4)]
            out += ["=========  ======", ""]
    return "\n".join(out)


def task(source):
    return publish_string(source, writer_name="html5",
                          settings_overrides={"report_level": 5, "halt_level": 5})


def make_items(scale, variant=0):
    n = max(2, round(DOCS * scale))
    return [document(i + variant * n) for i in range(n)]


def summary(results):
    return [(len(html), hashlib.sha256(html).hexdigest()[:12]) for html in results]


if __name__ == "__main__":
    raise SystemExit(main(task, make_items, summary))
