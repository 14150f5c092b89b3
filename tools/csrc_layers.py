#!/usr/bin/env python3
"""The layers of the C core (csrc/): its include and call graph, checked.

A unit is a .c file and its .h (csrc/wire.c and csrc/wire.h are the unit "wire"); a
header UNIT_NAME.h without a .c file of its own belongs to the unit UNIT when there is a
UNIT.c (interp_rec.h: the record shared by interp's files); any other header without a
.c file is a unit of its own (compat.h). A unit uses another when one
of its files includes the other's header, or names a function or object that the other
defines without `static` (a call, a PyType_Spec xi_*_spec, a global).

Fails (exit status 1) on
  - a circle between units (each is printed with the names that make its edges);
  - a function or object declared in the header of one unit and defined in another.
Prints the units bottom-up, one line each: its layer (0: uses no other unit; otherwise
one more than the highest unit it uses), its name and the units it uses.

    python3 tools/csrc_layers.py [CSRC_DIR] [--calls]

--calls adds, under each unit, the names it uses of each unit below it. Standard library
only; the parser knows C only as far as this code base writes it (definitions at the top
level, preprocessor conditionals that keep braces balanced per branch).
"""
import os
import re
import sys

TOKEN = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|->|\S")
INCLUDE = re.compile(r'#\s*include\s+"([^"]+)"')
KEYWORDS = {"if", "while", "for", "switch", "return", "sizeof", "defined"}


def strip_comments_and_strings(text):
    """The text with comments, string and character literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * max(0, min(j, n) - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def logical_lines(text):
    """Lines with backslash continuations joined."""
    return text.replace("\\\n", " ").split("\n")


class FileInfo:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.includes = []        # header names
        self.defines = {}         # name -> "function" | "object" (non-static)
        self.declares = set()     # names declared (prototypes, extern objects)
        self.statics = set()      # names defined static (they shadow nothing elsewhere)
        self.idents = set()       # every identifier named in code or macros
        self.macros = {}          # function-like macros: name -> (parameters, body)

    def parse(self):
        with open(self.path, encoding="utf-8") as f:
            raw = f.read()
        for line in logical_lines(raw):
            m = INCLUDE.match(line.strip())
            if m:
                self.includes.append(os.path.basename(m.group(1)))
        text = strip_comments_and_strings(raw)
        tokens = []
        for line in logical_lines(text):
            s = line.strip()
            if s.startswith("#"):
                d = re.match(r"#\s*(\w+)", s)
                directive = d.group(1) if d else ""
                tokens.append(("#", directive))
                if directive == "define":
                    # a macro's body names what its users call
                    m = re.match(r"#\s*define\s+(\w+)(\(([^)]*)\))?(.*)", s)
                    if m:
                        self.idents.update(re.findall(r"[A-Za-z_]\w*", m.group(4)))
                        if m.group(2):
                            params = [p.strip() for p in m.group(3).split(",")]
                            self.macros[m.group(1)] = (params, m.group(4))
                continue
            tokens.extend(("t", t) for t in TOKEN.findall(line))
        self._scan(tokens)

    def _scan(self, tokens):
        depth = 0
        cond = []            # per #if: [depth at #if, depth after its first branch]
        stmt = []            # the tokens of the top-level statement being read
        for kind, tok in tokens:
            if kind == "#":
                if tok in ("if", "ifdef", "ifndef"):
                    cond.append([depth, None])
                elif tok in ("elif", "else") and cond:
                    if cond[-1][1] is None:
                        cond[-1][1] = depth
                    depth = cond[-1][0]
                elif tok == "endif" and cond:
                    start, first = cond.pop()
                    if first is not None:
                        depth = first
                continue
            if depth > 0:
                if re.match(r"[A-Za-z_]", tok):
                    self.idents.add(tok)
                if tok == "{":
                    depth += 1
                elif tok == "}":
                    depth -= 1
                continue
            # top level
            if tok == "{":
                depth = 1
                if _is_function_head(stmt):
                    self._top_statement(stmt, body=True)
                    stmt = []
                else:
                    # a struct, enum or initializer: the statement goes on to its ';'
                    stmt.append("{}")
            elif tok == ";":
                if len(stmt) >= 3 and stmt[0] in self.macros and stmt[1] == "(":
                    # a macro that defines something (SPEC(xi_lock_spec, ...);)
                    self._scan(self._expand(stmt))
                else:
                    self._top_statement(stmt, body=False)
                stmt = []
            else:
                stmt.append(tok)
                if re.match(r"[A-Za-z_]", tok):
                    self.idents.add(tok)

    def _expand(self, stmt):
        params, body = self.macros[stmt[0]]
        args, cur, level = [], [], 0
        for t in stmt[2:]:
            if t == "(":
                level += 1
            elif t == ")":
                if level == 0:
                    break
                level -= 1
            if t == "," and level == 0:
                args.append(cur)
                cur = []
            else:
                cur.append(t)
        args.append(cur)
        subst = dict(zip(params, args))
        out = []
        for t in TOKEN.findall(body):
            out.extend(subst.get(t, [t]))
        return [("t", t) for t in out] + [("t", ";")]

    def _top_statement(self, stmt, body):
        if not stmt or "typedef" in stmt:
            return
        if stmt[0] in ("struct", "enum", "union") and (
                len(stmt) == 2 or (len(stmt) <= 3 and stmt[-1] == "{}")):
            return  # a type only, or its forward declaration
        is_static = "static" in stmt
        is_extern = "extern" in stmt
        if "=" in stmt:
            head = stmt[:stmt.index("=")]
            kind, name = "object", _last_ident(head)
        elif "(" in stmt:
            p = stmt.index("(")
            if p + 1 < len(stmt) and stmt[p + 1] == "*":      # a function pointer
                kind, name = "object", stmt[p + 2] if p + 2 < len(stmt) else None
            else:
                kind, name = "function", stmt[p - 1] if p > 0 else None
        else:
            # objects, maybe several: extern PyType_Spec xi_a_spec, xi_b_spec;
            parts, cur = [], []
            for t in stmt:
                if t == ",":
                    parts.append(cur)
                    cur = []
                else:
                    cur.append(t)
            parts.append(cur)
            for part in parts[1:]:
                self._top_statement(stmt[:1] + part if "extern" in stmt else part, body)
            kind, name = "object", _last_ident(parts[0])
        if name is None or not re.match(r"[A-Za-z_]\w*$", name) or name in KEYWORDS:
            return
        if is_static:
            self.statics.add(name)
        elif body or (kind == "object" and not is_extern and self.name.endswith(".c")):
            self.defines[name] = kind
        else:
            self.declares.add(name)


def _is_function_head(stmt):
    """Whether a top-level statement followed by '{' is a function's head."""
    if not stmt or "=" in stmt or "typedef" in stmt or stmt[-1] != ")":
        return False
    return "(" in stmt


def _last_ident(tokens):
    for t in reversed(tokens):
        if t in ("]", "[", "{}") or re.match(r"\d", t):
            continue
        if re.match(r"[A-Za-z_]\w*$", t):
            return t
    return None


_C_UNITS = set()  # the stems of the .c files (analyse fills it)


def unit_of(filename):
    stem = os.path.splitext(filename)[0]
    if filename.endswith(".h") and stem not in _C_UNITS and "_" in stem:
        base = stem.rsplit("_", 1)[0]
        if base in _C_UNITS:
            return base
    return stem


def analyse(csrc):
    files = {}
    for name in sorted(os.listdir(csrc)):
        if name.endswith((".c", ".h")):
            info = FileInfo(os.path.join(csrc, name))
            info.parse()
            files[name] = info
    _C_UNITS.clear()
    _C_UNITS.update(os.path.splitext(n)[0] for n in files if n.endswith(".c"))
    units = sorted({unit_of(n) for n in files})
    definer = {}                 # name -> unit that defines it (non-static)
    errors = []
    for name, info in files.items():
        for sym in info.defines:
            if sym in definer and definer[sym] != unit_of(name):
                errors.append(f"{sym} is defined in both {definer[sym]} and {unit_of(name)}")
            definer[sym] = unit_of(name)
    for name, info in files.items():
        if not name.endswith(".h"):
            continue
        for sym in sorted(info.declares):
            where = definer.get(sym)
            if where is not None and where != unit_of(name):
                errors.append(f"{sym} is declared in {name} but defined in {where}.c")
    # edges: unit -> {unit: set of reasons}
    edges = {u: {} for u in units}
    for name, info in files.items():
        u = unit_of(name)
        for inc in info.includes:
            if inc in files and unit_of(inc) != u:
                edges[u].setdefault(unit_of(inc), set()).add(f"#include {inc}")
        for sym in info.idents:
            if sym in info.statics or sym in info.defines:
                continue
            v = definer.get(sym)
            if v is not None and v != u:
                edges[u].setdefault(v, set()).add(sym)
    return units, edges, errors


def strongly_connected(units, edges):
    """Tarjan's algorithm: the strongly connected components."""
    index, low, on, stack, comps = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in units:
        if v not in index:
            visit(v)
    return comps


def shortest_cycles(comp, edges):
    """For each edge inside a circle, one shortest way back: the circles, deduplicated."""
    members = set(comp)
    cycles = set()
    for a in comp:
        for b in edges[a]:
            if b not in members:
                continue
            # breadth-first from b back to a
            prev, queue = {b: None}, [b]
            while queue and a not in prev:
                nxt = []
                for x in queue:
                    for y in sorted(edges[x]):
                        if y in members and y not in prev:
                            prev[y] = x
                            nxt.append(y)
                queue = nxt
            if a not in prev:
                continue
            path, x = [], a
            while x is not None:
                path.append(x)
                x = prev[x]
            path.reverse()              # b ... a
            cycle = [a] + path[:-1]     # a -> b -> ... -> (back to a)
            k = cycle.index(min(cycle))
            cycles.add(tuple(cycle[k:] + cycle[:k]))
    return sorted(cycles, key=lambda c: (len(c), c))


def describe(reasons):
    calls = sorted(r for r in reasons if not r.startswith("#include"))
    incs = sorted(r for r in reasons if r.startswith("#include"))
    return ", ".join(incs + calls)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    show_calls = "--calls" in argv
    csrc = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "..", "csrc")
    units, edges, errors = analyse(csrc)
    comps = strongly_connected(units, edges)
    comp_of = {u: tuple(c) for c in comps for u in c}
    # layers of the condensation: 0 for a component that uses no other
    level = {}

    def lvl(c):
        if c not in level:
            level[c] = 0
            below = {comp_of[w] for u in c for w in edges[u]} - {c}
            level[c] = max((lvl(d) + 1 for d in below), default=0)
        return level[c]

    for c in comps:
        lvl(tuple(c))
    print("C core layers, bottom-up (layer: unit <- the units it uses):")
    for c in sorted(level, key=lambda c: (level[c], c)):
        for u in c:
            used = sorted(edges[u])
            mark = " [circle]" if len(c) > 1 else ""
            print(f"  {level[c]:2d}  {u:<9}{mark} <- {' '.join(used) if used else '-'}")
            if show_calls:
                for w in used:
                    calls = sorted(r for r in edges[u][w] if not r.startswith("#include"))
                    if calls:
                        print(f"          {w}: {' '.join(calls)}")
    failed = False
    for c in comps:
        if len(c) < 2:
            continue
        failed = True
        print(f"\nCIRCLE between {len(c)} units: {' '.join(c)}", file=sys.stderr)
        for cyc in shortest_cycles(c, edges):
            ring = list(cyc) + [cyc[0]]
            print("  " + " -> ".join(ring), file=sys.stderr)
            for a, b in zip(ring, ring[1:]):
                print(f"      {a} -> {b}: {describe(edges[a][b])}", file=sys.stderr)
    for e in errors:
        failed = True
        print(f"\nMISPLACED: {e}", file=sys.stderr)
    if failed:
        print("\ncsrc_layers: the C core is not layered (see above)", file=sys.stderr)
        return 1
    print("csrc_layers: no circle; every declaration is in its definer's header")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
