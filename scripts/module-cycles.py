#!/usr/bin/env python3
"""Refuses an import circle between the top-level modules of any crate of the workspace.

A module's edges are the `crate::<module>` paths its code names (comments and `#[cfg(test)]`
code aside); a circle is a strongly connected set of two or more modules. Exits 1 naming
each circle, 0 when there is none.
"""
import os
import re
import sys


def crates(root):
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("target", ".git", ".iac", "node_modules")]
        if "Cargo.toml" in files and os.path.isdir(os.path.join(folder, "src")):
            yield folder


def graph(src):
    edges = {}
    for folder, _, files in os.walk(src):
        for name in files:
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if not name.endswith(".rs") or parts[0] in ("lib", "main", "bin"):
                continue
            text = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
            code = "\n".join(line.split("//")[0] for line in text.splitlines())
            named = set(re.findall(r"crate::(\w+)", code))
            for group in re.findall(r"crate::\{([^}]*)\}", code):
                named |= set(re.findall(r"(?:^|[,\s])(\w+)", group))
            edges.setdefault(parts[0], set()).update(named - {parts[0]})
    return edges


def circles(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            circle = []
            while True:
                w = stack.pop()
                on.discard(w)
                circle.append(w)
                if w == v:
                    break
            if len(circle) > 1:
                found.append(sorted(circle))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    failed = False
    for crate in sorted(crates(root)):
        for circle in circles(graph(os.path.join(crate, "src"))):
            failed = True
            print(f"{os.path.relpath(crate, root)}: modules import each other: {', '.join(circle)}")
    sys.exit(1 if failed else 0)


main()
