"""Syntax highlighting: 78 Python source files of the standard library (of very
different sizes, as a project's files are), each rendered to HTML with pygments; the
HTML (str) comes back."""
import glob
import hashlib
import os
import sysconfig

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from _jobrun import main

FILES = 78


def task(item):
    name, source = item
    return name, highlight(source, PythonLexer(), HtmlFormatter(linenos=True, cssclass="src"))


def make_items(scale, variant=0):
    paths = sorted(glob.glob(os.path.join(sysconfig.get_path("stdlib"), "*.py")))
    n = max(2, round(FILES * scale))
    step = max(1, len(paths) // n)
    items = []
    for path in paths[::step][:n]:
        with open(path, encoding="utf-8") as f:
            items.append((os.path.basename(path), f.read()))
    return items


def summary(results):
    return [(name, len(html), hashlib.sha256(html.encode()).hexdigest()[:12])
            for name, html in results]


if __name__ == "__main__":
    raise SystemExit(main(task, make_items, summary))
