"""Every regular expression of chalicelib/ and agent/, found and judged (docs/decisions/0024).

`collect()` finds the patterns: compiled ones by importing every module (module attributes,
class attributes, what functions keep in their closures, containers of those), literal ones by
reading the sources (`re.fullmatch("...", x)` in a function body), and it lists the calls whose
pattern is built at run time, which `tests/dsl/test_linear_regexes.py` allows only by name.

`problems(pattern)` is the static check, on `re._parser`'s tree: the shapes that make Python's
backtracking engine super-linear.
  - a repeat whose body can match empty, or whose body ends with a run that could also begin the
    next iteration (`(a+)+`, `(\\w+\\s?)*`), or whose alternatives begin alike (`(a|ab)*`);
  - two runs that can take the same character with only optional (or absorbed) parts between
    them (` *%? *`, `.+?\\s*$`, `.*a.*`): a failing input is split between them in n ways;
  - in a pattern not anchored at its start (used by search, finditer, sub), a run that can take
    the pattern's first character and is followed by something that can fail (`%\\[[^\\]]*\\]`
    on "%[%[%[...": every start reads to the end).

`attacks(pattern)` derives the inputs that would make such a pattern slow: for every run, the
shortest text reaching it, then the run's characters (those it shares with other runs, with the
pattern's start) pumped to the body size limit, then a character that makes it fail.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import re._compiler as K
import re._constants as C
import re._parser as P
import sys
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chalicelib", "agent")
BIG = 64  # a bounded repeat allowing more than this many is treated as a run
RUN_OPS = (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT)
SINGLE_OPS = (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN)
SEARCHING = ("search", "finditer", "findall", "sub", "subn", "split")
RE_FUNCTIONS = ("compile", "match", "fullmatch") + SEARCHING
UNIVERSE = [chr(i) for i in range(256)] + list("ßǅ١٣\u00a0\u2028\u3000中😀ſK")
PREFERRED = "a1 -_./:A%[]{}()$x,\t\n\x00!"


@dataclass(frozen=True)
class Found:
    pattern: str
    flags: int
    where: str


# -- finding them --------------------------------------------------------------------------------

def modules() -> list[types.ModuleType]:
    out = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        out.append(root)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            out.append(importlib.import_module(info.name))
    return out


def _visit(value, where: str, module: str, found: dict, seen: set, depth: int = 0) -> None:
    if id(value) in seen or depth > 4:
        return
    seen.add(id(value))
    if isinstance(value, re.Pattern):
        if isinstance(value.pattern, str):
            found.setdefault((value.pattern, value.flags & ~re.UNICODE), where)
        return
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            _visit(item, f"{where}[{key!r}]", module, found, seen, depth + 1)
        return
    if isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) != module:
        return
    if isinstance(value, types.FunctionType):
        for cell in value.__closure__ or ():
            try:
                _visit(cell.cell_contents, f"{where}.<closure>", module, found, seen, depth + 1)
            except ValueError:  # an empty cell
                pass
        return
    if isinstance(value, type):
        for name, attr in list(vars(value).items()):
            _visit(attr, f"{where}.{name}", module, found, seen, depth + 1)
    if isinstance(value, (staticmethod, classmethod)):
        _visit(value.__func__, where, module, found, seen, depth + 1)


def _flags(node: ast.AST | None) -> int | None:
    """re.IGNORECASE | re.DOTALL, ... as an int; None if not that simple."""
    if node is None:
        return 0
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "re":
        return int(getattr(re, node.attr))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _flags(node.left), _flags(node.right)
        return None if left is None or right is None else left | right
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


def collect() -> tuple[list[Found], list[str], list[str]]:
    """(patterns, calls whose pattern is built at run time, `regex_engine` settings of pydantic)."""
    found: dict[tuple[str, int], str] = {}
    seen: set[int] = set()
    dynamic: list[str] = []
    engines: list[str] = []
    for module in modules():
        for name, value in list(vars(module).items()):
            _visit(value, f"{module.__name__}.{name}", module.__name__, found, seen)
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        module_level = {id(node.value) for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))}
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "regex_engine":
                engines.append(f"{module.__name__}:{node.value.lineno}")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.func.attr in RE_FUNCTIONS and node.args):
                continue
            first = node.args[0]
            flag_arg = next((k.value for k in node.keywords if k.arg == "flags"), None)
            if flag_arg is None and node.func.attr in ("compile",) and len(node.args) > 1:
                flag_arg = node.args[1]
            if flag_arg is None and node.func.attr in ("match", "fullmatch", "search", "findall", "finditer") \
                    and len(node.args) > 2:
                flag_arg = node.args[2]
            flags = _flags(flag_arg)
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and flags is not None:
                found.setdefault((first.value, flags), f"{module.__name__}:{node.lineno}")
            elif id(node) in module_level:
                pass  # a module constant: seen through the import above
            else:
                dynamic.append(f"{module.__name__}:{_function_at(tree, node.lineno)}")
    return [Found(p, f, w) for (p, f), w in sorted(found.items(), key=lambda i: i[1])], sorted(set(dynamic)), engines


def _function_at(tree: ast.Module, line: int) -> str:
    best = "<module>"
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= line <= node.end_lineno:
            best = node.name
    return best


# -- the tree --------------------------------------------------------------------------------------

class Tree:
    """Facts about the nodes of one parsed pattern: their character sets, nullability, first sets."""

    def __init__(self, pattern: str, flags: int = 0):
        self.parsed = P.parse(pattern, flags)
        self.flags = self.parsed.state.flags

    def single(self, node, flags: int) -> frozenset:
        """The characters one single-character node matches (by asking the engine itself)."""
        compiled = K.compile(P.SubPattern(self.parsed.state, [node]), flags)
        return frozenset(c for c in UNIVERSE if compiled.fullmatch(c))

    def facts(self, seq, flags: int | None = None):
        """(nullable, first, chars) of a sequence."""
        flags = self.flags if flags is None else flags
        nullable, first, chars = True, frozenset(), frozenset()
        for node in seq:
            n, f, c = self.node_facts(node, flags)
            if nullable:
                first |= f
            nullable = nullable and n
            chars |= c
        return nullable, first, chars

    def node_facts(self, node, flags: int):
        op, av = node
        if op in SINGLE_OPS:
            s = self.single(node, flags)
            return False, s, s
        if op in RUN_OPS:
            low, _high, body = av
            n, f, c = self.facts(body, flags)
            return n or low == 0, f, c
        if op in (C.SUBPATTERN, C.ATOMIC_GROUP):
            return self.facts(self.body(node), self.inner_flags(node, flags))
        if op == C.BRANCH:
            parts = [self.facts(alt, flags) for alt in av[1]]
            return (any(p[0] for p in parts), frozenset().union(*(p[1] for p in parts)),
                    frozenset().union(*(p[2] for p in parts)))
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            return True, frozenset(), frozenset()
        if op == C.GROUPREF_EXISTS:
            _group, yes, no = av
            parts = [self.facts(x, flags) for x in (yes, no) if x is not None]
            return True, frozenset().union(*(p[1] for p in parts)), frozenset().union(*(p[2] for p in parts))
        return True, frozenset(UNIVERSE), frozenset(UNIVERSE)  # GROUPREF: anything

    @staticmethod
    def body(node):
        op, av = node
        if op == C.SUBPATTERN:
            return av[3]
        if op == C.ATOMIC_GROUP:
            return av
        if op in RUN_OPS:
            return av[2]
        if op in (C.ASSERT, C.ASSERT_NOT):
            return av[1]
        return []

    @staticmethod
    def inner_flags(node, flags: int) -> int:
        if node[0] == C.SUBPATTERN:
            _group, add, remove, _p = node[1]
            return (flags | add) & ~remove
        return flags

    @staticmethod
    def is_run(node) -> bool:
        return node[0] in RUN_OPS and (node[1][1] == C.MAXREPEAT or node[1][1] > BIG)


class Checker(Tree):
    def __init__(self, pattern: str, flags: int = 0):
        super().__init__(pattern, flags)
        self.found: list[str] = []

    # runs that can end / begin a match of a node -----------------------------------------------

    def tails(self, seq, flags: int) -> list[frozenset]:
        """Character sets of the runs that can end a match of `seq`: everything after them in
        `seq` can match empty or is made of their own characters."""
        out = []
        for k, node in enumerate(seq):
            for run in self.node_tails(node, flags):
                if all(self.absorbed(rest, run, flags) for rest in seq[k + 1:]):
                    out.append(run)
        return out

    def node_tails(self, node, flags: int) -> list[frozenset]:
        if self.is_run(node):
            return [self.node_facts(node, flags)[2]]
        if node[0] == C.BRANCH:
            return [t for alt in node[1][1] for t in self.tails(alt, flags)]
        if node[0] in RUN_OPS + (C.SUBPATTERN, C.ATOMIC_GROUP):
            return self.tails(self.body(node), self.inner_flags(node, flags))
        return []

    def leads(self, seq, run: frozenset, flags: int) -> list[frozenset]:
        """First characters of the runs reachable at the start of `seq`, passing over what can
        match empty or is made of `run`'s characters."""
        out = []
        for node in seq:
            out += self.node_leads(node, run, flags)
            if not self.absorbed(node, run, flags):
                break
        return out

    def node_leads(self, node, run: frozenset, flags: int) -> list[frozenset]:
        if self.is_run(node):
            return [self.node_facts(node, flags)[1]]  # what the run can begin with
        if node[0] == C.BRANCH:
            return [x for alt in node[1][1] for x in self.leads(alt, run, flags)]
        if node[0] in RUN_OPS + (C.SUBPATTERN, C.ATOMIC_GROUP):
            return self.leads(self.body(node), run, self.inner_flags(node, flags))
        return []

    def absorbed(self, node, run: frozenset, flags: int) -> bool:
        nullable, _first, chars = self.node_facts(node, flags)
        return nullable or chars <= run

    # the rules ----------------------------------------------------------------------------------

    def check(self) -> list[str]:
        self.walk(self.parsed.data, self.flags)
        self.search_rule()
        return self.found

    def walk(self, seq, flags: int) -> None:
        for i, node in enumerate(seq):
            for run in self.node_tails(node, flags):
                for later in seq[i + 1:]:
                    if any(run & lead for lead in self.node_leads(later, run, flags)):
                        self.found.append(f"runs side by side can take the same characters "
                                          f"({_show(run & frozenset().union(*self.node_leads(later, run, flags)))})")
                        break
                    if not self.absorbed(later, run, flags):
                        break
            op = node[0]
            inner = self.inner_flags(node, flags)
            if self.is_run(node):
                self.repeat_rule(node, flags)
            elif op in RUN_OPS and node[1][1] > 1:  # `(?:a.*){8}`: iterations side by side as well
                self.iteration_rule(self.body(node), flags)
            if op == C.BRANCH:
                for alt in node[1][1]:
                    self.walk(alt, flags)
            elif op == C.GROUPREF or op == C.GROUPREF_EXISTS:
                self.found.append("a backreference")
            elif op in RUN_OPS + (C.SUBPATTERN, C.ATOMIC_GROUP, C.ASSERT, C.ASSERT_NOT):
                self.walk(self.body(node), inner)

    def repeat_rule(self, node, flags: int) -> None:
        body = self.body(node)
        nullable, _first, _chars = self.facts(body, flags)
        if nullable:
            self.found.append("a repeat of something that can match empty")
            return
        self.iteration_rule(body, flags)
        for sub in _nodes(body):
            if sub[0] == C.BRANCH and self.alike(sub[1][1], flags):
                self.found.append("a repeat around alternatives that begin alike")
                break

    def iteration_rule(self, body, flags: int) -> None:
        _nullable, first, _chars = self.facts(body, flags)
        for run in self.tails(body, flags):
            if run & first and not (len(body) == 1 and body[0][0] in SINGLE_OPS):
                self.found.append(f"a repeat whose iterations can end and begin with the same characters "
                                  f"({_show(run & first)})")
                return

    def alike(self, alternatives, flags: int) -> bool:
        prefixes = [self.positions(alt, flags) for alt in alternatives]
        for i, a in enumerate(prefixes):
            for b in prefixes[i + 1:]:
                if all(x & y for x, y in zip(a, b)):
                    return True
        return False

    def positions(self, seq, flags: int, k: int = 3) -> list[frozenset]:
        """The characters of the first k positions of `seq`, as far as plainly known; then anything."""
        out = []
        for node in seq:
            if len(out) >= k:
                break
            if node[0] in SINGLE_OPS:
                out.append(self.single(node, flags))
            elif node[0] in RUN_OPS and node[1][0] == node[1][1] and len(node[1][2]) == 1 \
                    and node[1][2][0][0] in SINGLE_OPS:
                out += [self.single(node[1][2][0], flags)] * min(node[1][0], k - len(out))
            else:
                break
        return out + [frozenset(UNIVERSE)] * (k - len(out))

    def search_rule(self) -> None:
        data = self.parsed.data
        if data and data[0][0] == C.AT and data[0][1] in (C.AT_BEGINNING, C.AT_BEGINNING_STRING):
            return
        _n, start, _c = self.facts(data)
        for node, last in self.runs_with_position(data, True):
            chars = self.node_facts(node, self.flags)[2]
            if not last and chars & start:
                self.found.append(f"unanchored: a run can take the first character ({_show(chars & start)}) and "
                                  "something after it can fail, so every start reads on")
                return

    def runs_with_position(self, seq, last: bool):
        for i, node in enumerate(seq):
            is_last = last and i == len(seq) - 1
            if self.is_run(node):
                yield node, is_last
            op = node[0]
            if op == C.BRANCH:
                for alt in node[1][1]:
                    yield from self.runs_with_position(alt, is_last)
            elif op in RUN_OPS + (C.SUBPATTERN, C.ATOMIC_GROUP):
                yield from self.runs_with_position(self.body(node), is_last and not self.is_run(node))


def _nodes(seq):
    for node in seq:
        yield node
        op, av = node
        if op == C.BRANCH:
            for alt in av[1]:
                yield from _nodes(alt)
        elif op in RUN_OPS + (C.SUBPATTERN, C.ATOMIC_GROUP, C.ASSERT, C.ASSERT_NOT):
            yield from _nodes(Tree.body(node))


def _show(chars: frozenset) -> str:
    return repr("".join(sorted(chars))[:12])


def problems(pattern: str, flags: int = 0) -> list[str]:
    return sorted(set(Checker(pattern, flags).check()))


# -- attacks ---------------------------------------------------------------------------------------

def _pick(chars: frozenset, avoid: frozenset = frozenset()) -> str | None:
    usable = chars - avoid
    for c in PREFERRED:
        if c in usable:
            return c
    return min(usable) if usable else None


class Attacker(Tree):
    def sample(self, seq, flags: int) -> str:
        return "".join(self.node_sample(node, flags) for node in seq)

    def node_sample(self, node, flags: int) -> str:
        op, av = node
        if op in SINGLE_OPS:
            return _pick(self.single(node, flags)) or ""
        if op in RUN_OPS:
            return self.sample(av[2], flags) * av[0]
        if op in (C.SUBPATTERN, C.ATOMIC_GROUP):
            return self.sample(self.body(node), self.inner_flags(node, flags))
        if op == C.BRANCH:
            return min((self.sample(alt, flags) for alt in av[1]), key=len)
        return ""

    def runs(self, seq, prefix: str, flags: int):
        """(text reaching the run, the run) for every run of the pattern."""
        for i, node in enumerate(seq):
            before = prefix + self.sample(seq[:i], flags)
            op = node[0]
            inner = self.inner_flags(node, flags)
            if self.is_run(node):
                yield before, node, flags
            if op == C.BRANCH:
                for alt in node[1][1]:
                    yield from self.runs(alt, before, flags)
            elif op in RUN_OPS + (C.SUBPATTERN, C.ATOMIC_GROUP):
                yield from self.runs(self.body(node), before, inner)

    def anchored(self) -> bool:
        data = self.parsed.data
        return bool(data) and data[0][0] == C.AT and data[0][1] in (C.AT_BEGINNING, C.AT_BEGINNING_STRING)

    def specs(self) -> list[tuple[str, str, str]]:
        """(prefix, pump, suffix): the input is prefix + pump repeated to the size + suffix."""
        data = self.parsed.data
        _n, start, _c = self.facts(data)
        runs = list(self.runs(data, "", self.flags))
        sets = [self.node_facts(node, flags)[2] for _p, node, flags in runs]
        searched = not self.anchored()
        out: set[tuple[str, str, str]] = set()
        for index, (prefix, node, flags) in enumerate(runs):
            chars = sets[index]
            pumps = {_pick(chars & other) for j, other in enumerate(sets) if j != index}  # shared: ambiguous
            pumps |= {_pick(chars & start), _pick(chars)}
            body = self.sample(self.body(node), flags)
            if len(body) > 1:
                pumps.add(body)
            killer = _pick(frozenset(UNIVERSE), chars) or ""  # the run cannot take it: the match fails after
            for pump in sorted(p for p in pumps if p):
                out.add((prefix, pump, killer))
                if prefix and searched:
                    out.add(("", prefix + pump, killer))  # a start at every repetition
            if prefix and searched:
                out.add(("", prefix, _pick(frozenset(UNIVERSE), frozenset(prefix)) or ""))
        first = _pick(start)
        if first:
            out.add(("", first, "\x00"))
        return sorted(out)


def attacks(pattern: str, flags: int = 0) -> list[tuple[str, str, str]]:
    return Attacker(pattern, flags).specs()


def anchored(pattern: str, flags: int = 0) -> bool:
    """Starts with `^` (or `\\A`): a search tries the start only, as match and fullmatch do."""
    return Attacker(pattern, flags).anchored()


# Run in a child process (tests/dsl/test_linear_regexes.py): each pattern under a CPU budget,
# every input through fullmatch, and through finditer (search, findall, sub) unless the pattern
# is anchored at its start (a search then tries the start only).
RUNNER = r"""
import json, re, resource, sys
budget, size, cases = json.load(sys.stdin)
for i, (pattern, flags, specs, searched) in enumerate(cases):
    compiled = re.compile(pattern, flags)
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime) + budget
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.getrlimit(resource.RLIMIT_CPU)[1]))
    for j, (prefix, pump, suffix) in enumerate(specs):
        print("run", i, j, flush=True)
        text = prefix + pump * max(1, (size - len(prefix) - len(suffix)) // len(pump)) + suffix
        if searched:
            for _ in compiled.finditer(text):
                pass
        compiled.fullmatch(text)
print("all done", flush=True)
"""


def main() -> None:  # python -m tests.dsl.regex_audit: the list, with what the checks say
    patterns, dynamic, _engines = collect()
    for found in patterns:
        print(f"{found.where:60} {found.pattern!r} {problems(found.pattern, found.flags)}")
    print("built at run time:", dynamic)


if __name__ == "__main__":
    sys.exit(main())
