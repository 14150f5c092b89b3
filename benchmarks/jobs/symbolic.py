"""Symbolic algebra: 24 problems solved with sympy: integrals, series expansions,
simplifications and equation solving."""
import sympy as sp

from _jobrun import main

PROBLEMS = 24
x = sp.Symbol("x")


def task(i):
    k, a = i % 5 + 1, i % 3 + 2 + i // 100
    kind = i % 4
    if kind == 0:
        r = sp.integrate(x**k * sp.sin(a * x) * sp.exp(-x), x)
    elif kind == 1:
        r = sp.series(sp.exp(sp.sin(x)) * sp.cos(a * x) / (1 - x**k), x, 0, 8 + k).removeO()
    elif kind == 2:
        r = sp.simplify((x**(k + 2) - a**(k + 2)) / (x - a) - sp.expand((x + a)**k))
    else:
        r = sp.solve(x**3 - a * x**2 + k * x - (a + k), x)
    return i, str(r)


def make_items(scale, variant=0):
    # the warm run solves other problems: sympy caches what it computed
    return [i + 100 * variant for i in range(max(2, round(PROBLEMS * scale)))]


def summary(results):
    return results


if __name__ == "__main__":
    raise SystemExit(main(task, make_items, summary))
