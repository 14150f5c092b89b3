"""Command line: ``python -m extrainterpreters check [MODULE ...] [--json]``."""
import sys

USAGE = """usage: python -m extrainterpreters check [MODULE ...] [--json]

commands:
  check   import modules in a fresh isolated interpreter and report which load"""


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "check":
        from ._check import main as check

        return check(argv[1:])
    print(f"unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
