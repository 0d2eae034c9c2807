"""The contract compiler: one test per language construct, one per compile error.

Constructs are checked by behaviour: the snippet is compiled, installed and run
through the VM, and the result (or named error) is compared. Compile errors are
checked for their message and their file:line:col.
"""

from __future__ import annotations

import textwrap

import pytest

from contracts_vm import CompileError, compile_source
from contracts_vm.api import CallContext, execute_call, execute_view, install_contract
from contracts_vm.memstate import MemoryState

SENDER = b"\x07" * 32


def run(source: str, method: str = "main", args: list | None = None, state: MemoryState | None = None,
        view: bool = False, gas: int = 1_000_000):
    state = state if state is not None else MemoryState()
    if not state.has(b"cmeta/t"):
        install_contract(state, "t", textwrap.dedent(source))
    fn = execute_view if view else execute_call
    return fn(state, "t", method, args or [], CallContext(sender=SENDER, height=5, timestamp_ms=9), gas)


def value(body: str, args: str = "", argv: list | None = None, prelude: str = "") -> object:
    src = textwrap.dedent(prelude) + "\n@public\ndef main(" + args + ") -> any:\n" + textwrap.indent(textwrap.dedent(body), "    ")
    result = run(src, args=argv)
    assert result.ok, (result.error, result.error_message)
    return result.return_value


def error(body: str, prelude: str = "") -> str:
    src = textwrap.dedent(prelude) + "\n@public\ndef main() -> any:\n" + textwrap.indent(textwrap.dedent(body), "    ")
    result = run(src)
    assert not result.ok
    return result.error


# ---- constructs ------------------------------------------------------------------------

CONSTRUCTS = [
    ("int literal and return", "return 42", 42),
    ("negative literal", "return -7", -7),
    ("bytes literal", "return b'\\x01ab'", b"\x01ab"),
    ("str literal", "return 'hé'", "hé"),
    ("bool and None", "return [True, False, None]", [True, False, None]),
    ("local variables", "a = 2\nb = a * 3\nreturn b", 6),
    ("annotated local", "a: int = 5\nreturn a", 5),
    ("arithmetic precedence", "return 2 + 3 * 4 - 10 // 3", 11),
    ("floor division and modulo", "return [7 // 2, -7 // 2, -7 % 3]", [3, -4, 2]),
    ("power", "return 10 ** 6", 10**6),
    ("unary minus of a variable", "a = 3\nreturn -a", -3),
    ("string concatenation", "return 'ab' + 'cd'", "abcd"),
    ("bytes concatenation", "return b'ab' + b'cd'", b"abcd"),
    ("comparisons", "return [1 < 2, 2 <= 2, 3 > 4, 4 >= 5, 1 == 1, 1 != 1]", [True, True, False, False, True, False]),
    ("strict equality", "return 1 == True", False),
    ("and / or short circuit", "x = [1]\nreturn (False and x[5] == 1) or (True or x[9] == 1)", True),
    ("not", "return not False", True),
    ("in and not in", "return [2 in [1, 2], 'k' not in {'k': 1}, b'b' in b'abc']", [True, False, True]),
    ("is None", "x = None\nreturn [x is None, x is not None]", [True, False]),
    ("if elif else", "x = 5\nif x < 3:\n    return 'low'\nelif x < 10:\n    return 'mid'\nelse:\n    return 'high'", "mid"),
    ("if without else", "x = 1\nif x == 1:\n    x = 2\nreturn x", 2),
    ("conditional expression", "x = 4\nreturn 'even' if x % 2 == 0 else 'odd'", "even"),
    ("for over range", "t = 0\nfor i in range(5):\n    t += i\nreturn t", 10),
    ("for over range with start and step", "out = []\nfor i in range(10, 0, -3):\n    out.append(i)\nreturn out", [10, 7, 4, 1]),
    ("for over list", "t = 0\nfor v in [3, 4]:\n    t += v\nreturn t", 7),
    ("for over map keys sorted", "out = []\nfor k in {'b': 1, 'a': 2}:\n    out.append(k)\nreturn out", ["a", "b"]),
    ("for over items with unpacking", "t = ''\nfor k, v in {'b': 'x', 'a': 'y'}.items():\n    t = t + k + v\nreturn t", "aybx"),
    ("break and continue", "out = []\nfor i in range(10):\n    if i == 2:\n        continue\n    if i == 5:\n        break\n    out.append(i)\nreturn out", [0, 1, 3, 4]),
    ("while loop", "n = 0\nwhile n < 7:\n    n += 2\nreturn n", 8),
    ("while with break", "n = 0\nwhile True:\n    n += 1\n    if n == 3:\n        break\nreturn n", 3),
    ("nested loops", "t = 0\nfor i in range(3):\n    for j in range(3):\n        t += i * j\nreturn t", 9),
    ("tuple unpacking assignment", "a, b = [1, 2]\nreturn b - a", 1),
    ("list building", "xs = []\nxs.append(1)\nxs.append(2)\nxs[0] = 5\nreturn xs", [5, 2]),
    ("list index, negative index, slice", "xs = [1, 2, 3, 4]\nreturn [xs[0], xs[-1], xs[1:3], xs[:2], xs[2:]]", [1, 4, [2, 3], [1, 2], [3, 4]]),
    ("list pop and len", "xs = [1, 2, 3]\nv = xs.pop()\nreturn [v, len(xs)]", [3, 2]),
    ("dict literal, get, set, del", "m = {'a': 1}\nm['b'] = 2\ndel m['a']\nreturn [m.get('a', 0), m.get('b'), m]", [0, 2, {"b": 2}]),
    ("dict keys values items", "m = {'b': 2, 'a': 1}\nreturn [m.keys(), m.values(), m.items()]", [["a", "b"], [1, 2], [["a", 1], ["b", 2]]]),
    ("augmented assignment on subscript", "xs = [1, 2]\nxs[1] += 5\nreturn xs", [1, 7]),
    ("bytes and str methods", "return ['ab'.encode(), b'ab'.decode(), b'\\x0f'.hex(), 'abc'.startswith('ab')]", [b"ab", "ab", "0f", True]),
    ("builtins", "return [min(3, 1), max(3, 1), abs(-4), str(12), int('-3'), sorted([3, 1, 2])]", [1, 3, 4, "12", -3, [1, 2, 3]]),
    ("int bytes conversion", "return [int_to_bytes(1), bytes_to_int(b'\\x01\\x00')]", [b"\x00" * 7 + b"\x01", 256]),
    ("hashing", "return sha256(b'abc')[:4]", bytes.fromhex("ba7816bf")),
    ("contract address", "return contract_address('t') == ctx.self_address", True),
    ("context fields", "return [ctx.sender, ctx.height, ctx.timestamp_ms, ctx.contract, ctx.caller_contract, ctx.origin]",
     [SENDER, 5, 9, "t", "", SENDER]),
    ("docstring inside function", "'''a docstring'''\nreturn 1", 1),
    ("pass", "pass\nreturn 1", 1),
    ("return without value", "return", None),
    ("implicit None return", "x = 1", None),
]


@pytest.mark.parametrize("name,body,expected", CONSTRUCTS, ids=[c[0] for c in CONSTRUCTS])
def test_construct(name, body, expected):
    assert value(body) == expected


def test_parameters_are_typed_and_checked():
    src = "@public\ndef main(a: int, b: bytes, c: list[str], d: dict[str, int]) -> int:\n    return a + len(b) + len(c) + d['k']\n"
    assert run(src, args=[1, b"xy", ["p"], {"k": 10}]).return_value == 14
    assert run(src, args=["1", b"xy", ["p"], {"k": 10}]).error == "BadArguments"
    assert run(src, args=[1, b"xy", [5], {"k": 10}]).error == "BadArguments"


def test_return_type_is_checked():
    assert run("@public\ndef main() -> int:\n    return 'x'\n").error == "BadReturn"


def test_module_constants_are_folded():
    prelude = "A = 10\nB = A * 3 + 2\nNAME = 'shop' + 'chain'\nNEG = -5\n"
    assert value("return [B, NAME, NEG]", prelude=prelude) == [32, "shopchain", -5]


def test_internal_functions_and_recursion():
    prelude = "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n"
    assert value("return fib(15)", prelude=prelude) == 610


def test_records():
    prelude = "class Order(Record):\n    buyer: bytes\n    amount: int\n    state: int\n"
    body = "o = Order(buyer=b'b', state=1, amount=5)\no.state = 2\no.amount += 1\nreturn [o.buyer, o.amount, o.state, o]"
    assert value(body, prelude=prelude) == [b"b", 6, 2, {"buyer": b"b", "amount": 6, "state": 2}]


def test_record_as_typed_argument():
    src = "class P(Record):\n    x: int\n    y: int\n\n@public\ndef main(p: P) -> int:\n    return p.x + p.y\n"
    assert run(src, args=[{"x": 1, "y": 2}]).return_value == 3
    assert run(src, args=[{"x": 1}]).error == "BadArguments"


STORAGE = """
total: int
owner: bytes
bal: Map[bytes, int]
pairs: Map[tuple[bytes, int], str]
orders: Map[int, Order]

class Order(Record):
    buyer: bytes
    amount: int
"""


def test_storage_scalars_maps_tuple_keys_records():
    src = STORAGE.replace("class Order", "class Order") + """
@public
def write() -> None:
    self.total += 5
    self.owner = ctx.sender
    self.bal[b'a'] = 10
    self.bal[b'a'] -= 3
    self.bal[b'b'] += 1
    self.pairs[(b'x', 2)] = 'two'
    self.pairs[(b'x', 1)] = 'one'
    self.pairs[(b'y', 0)] = 'zero'
    self.orders[7] = Order(buyer=ctx.sender, amount=9)

@view
def read() -> list:
    o = self.orders[7]
    return [self.total, self.owner, self.bal[b'a'], self.bal.get(b'zz', -1), b'b' in self.bal, b'q' in self.bal,
            self.pairs.items((b'x',), 10), self.pairs.keys((), 2), o.amount, self.orders.get(8)]

@public
def remove() -> bool:
    del self.bal[b'a']
    return b'a' in self.bal
"""
    src = src.replace("read() -> list", "read() -> any")
    state = MemoryState()
    assert run(src, "write", state=state).ok
    r = run(src, "read", state=state, view=True)
    assert r.return_value == [5, SENDER, 7, -1, True, False, [[[b"x", 1], "one"], [[b"x", 2], "two"]],
                              [[b"x", 1], [b"x", 2]], 9, None]
    assert run(src, "remove", state=state).return_value is False


def test_fields_and_items_of_stored_values_are_written_back():
    src = """
class O(Record):
    state: int
    n: int
orders: Map[bytes, O]
cfg: O
lists: Map[int, list[int]]

@public
def main() -> any:
    self.orders[b"a"] = O(state=1, n=0)
    self.orders[b"a"].state = 5
    self.orders[b"a"].n += 3
    self.cfg = O(state=0, n=0)
    self.cfg.n = 9
    self.cfg.n += 1
    self.lists[1] = [1, 2, 3]
    self.lists[1][0] = 10
    self.lists[1][1] += 5
    del self.lists[1][2]
    return [self.orders[b"a"], self.cfg, self.lists[1]]
"""
    assert run(src).return_value == [{"state": 5, "n": 3}, {"state": 0, "n": 10}, [10, 7]]


def test_storage_missing_key_is_an_error():
    src = STORAGE + "\n@public\ndef main() -> int:\n    return self.bal[b'nobody']\n"
    assert run(src).error == "KeyNotFound"


def test_require_and_revert():
    assert error("require(1 > 2, 'nope')\nreturn 1") == "RequireFailed"
    r = run("@public\ndef main() -> None:\n    revert('stop here')\n")
    assert (r.error, r.error_message) == ("RequireFailed", "stop here")
    assert value("require(True)\nreturn 1") == 1


def test_events():
    r = run("@public\ndef main(to: bytes) -> None:\n    emit(Transfer, to=to, amount=5)\n    emit(Ping)\n", args=[b"z"])
    assert r.events == [("t", "Transfer", {"to": b"z", "amount": 5}), ("t", "Ping", {})]


def test_view_cannot_write():
    src = STORAGE + "\n@view\ndef main() -> None:\n    self.total = 1\n"
    assert run(src).error == "ReadOnlyViolation"


def test_calls_to_other_contracts_and_capabilities():
    state = MemoryState()
    install_contract(state, "vault", "locked: Map[bytes, int]\n\n@public\n@requires('escrow')\n"
                                     "def lock(k: bytes, n: int) -> int:\n    self.locked[k] += n\n    return self.locked[k]\n"
                                     "\n@view\ndef who() -> list:\n    return [ctx.sender, ctx.caller_contract, ctx.origin]\n")
    src = "@public\ndef main() -> any:\n    a = call('vault', 'lock', b'o1', 5)\n    b = call('vault', 'lock', b'o1', 2)\n" \
          "    return [a, b, call('vault', 'who')]\n"
    install_contract(state, "orders", src, capabilities=["escrow"])
    install_contract(state, "rogue", src)
    ok = execute_call(state, "orders", "main", [], CallContext(sender=SENDER), 100000)
    assert ok.return_value[:2] == [5, 7]
    from contracts_vm import contract_address
    assert ok.return_value[2] == [contract_address("orders"), "orders", SENDER]
    denied = execute_call(state, "rogue", "main", [], CallContext(sender=SENDER), 100000)
    assert denied.error == "PermissionDenied"
    direct = execute_call(state, "vault", "lock", [b"o1", 1], CallContext(sender=SENDER), 100000)
    assert direct.error == "PermissionDenied"


def test_abi_lists_public_and_view_methods_only():
    c = compile_source(STORAGE + "\n@public\ndef a(x: int) -> int:\n    return x\n\n@view\ndef b() -> None:\n    pass\n"
                       "\ndef helper():\n    pass\n\n@public\n@requires('cap')\ndef c() -> None:\n    emit(E, v=1)\n")
    methods = {m["name"]: m for m in c.abi["methods"]}
    assert sorted(methods) == ["a", "b", "c"]
    assert methods["a"]["args"] == [["x", "int"]] and methods["a"]["returns"] == "int"
    assert methods["b"]["kind"] == "view" and methods["c"]["requires"] == "cap"
    assert c.abi["events"] == [["E", ["v"]]]
    assert c.abi["records"] == {"Order": [["buyer", "bytes"], ["amount", "int"]]}
    assert ["pairs", ["bytes", "int"], "str"] in c.abi["storage"]


def test_compilation_is_deterministic():
    src = (STORAGE + "\n@public\ndef a(x: int) -> int:\n    m = {'b': 1, 'a': 2}\n    return x + m['a']\n")
    first = compile_source(src)
    again = compile_source(src)
    assert first.code == again.code and first.code_hash == again.code_hash and first.abi == again.abi


# ---- compile errors --------------------------------------------------------------------

ERRORS = [
    ("syntax error", "def (:\n", 1, "syntax error"),
    ("float literal", "X = 1.5\n", 1, "float literals"),
    ("import", "import os\n", 1, "Import is not allowed"),
    ("module statement", "@public\ndef f() -> None:\n    pass\nprint(1)\n", 4, "not allowed at module level"),
    ("non-constant module value", "X = foo()\n", 1, "constant expressions"),
    ("storage with value", "x: int = 5\n", 1, "without a value"),
    ("unknown type", "x: float\n", 1, "unknown type"),
    ("bad map key", "m: Map[list[int], int]\n", 1, "map keys"),
    ("map arity", "m: Map[int]\n", 1, "two types"),
    ("class not record", "class A:\n    pass\n", 1, "only allowed as records"),
    ("record body", "class A(Record):\n    x = 1\n", 2, "only `field: Type`"),
    ("duplicate name", "X = 1\nX = 2\n", 2, "already defined"),
    ("reserved name", "require = 1\n", 1, "reserved"),
    ("no public method", "def f():\n    pass\n", 1, "at least one @public"),
    ("unknown decorator", "@cached\ndef f() -> None:\n    pass\n", 1, "decorators are"),
    ("requires without public", "@requires('x')\ndef f():\n    pass\n", 2, "@requires applies"),
    ("missing parameter type", "@public\ndef f(a) -> None:\n    pass\n", 2, "needs a type annotation"),
    ("missing return type", "@public\ndef f():\n    pass\n", 2, "return annotation"),
    ("default argument", "@public\ndef f(a: int = 1) -> None:\n    pass\n", 2, "no defaults"),
    ("self parameter", "@public\ndef f(self) -> None:\n    pass\n", 2, "no self parameter"),
    ("division", "@public\ndef f() -> int:\n    return 1 / 2\n", 3, "use //"),
    ("bit operator", "@public\ndef f() -> int:\n    return 1 & 2\n", 3, "BitAnd is not supported"),
    ("chained comparison", "@public\ndef f() -> bool:\n    return 1 < 2 < 3\n", 3, "chained comparisons"),
    ("is with non-None", "@public\ndef f() -> bool:\n    return 1 is 2\n", 3, "with None only"),
    ("lambda", "@public\ndef f() -> None:\n    g = lambda: 1\n", 3, "lambda"),
    ("comprehension", "@public\ndef f() -> list:\n    return [x for x in [1]]\n", 3, "comprehensions"),
    ("f-string", "@public\ndef f() -> str:\n    return f'{1}'\n", 3, "f-strings"),
    ("set literal", "@public\ndef f() -> None:\n    s = {1}\n", 3, "sets"),
    ("try", "@public\ndef f() -> None:\n    try:\n        pass\n    except:\n        pass\n", 3, "try/except"),
    ("assert", "@public\ndef f() -> None:\n    assert True\n", 3, "use require"),
    ("raise", "@public\ndef f() -> None:\n    raise\n", 3, "revert"),
    ("global", "@public\ndef f() -> None:\n    global x\n", 3, "global"),
    ("nested function", "@public\ndef f() -> None:\n    def g():\n        pass\n", 3, "nested functions"),
    ("with", "@public\ndef f() -> None:\n    with x:\n        pass\n", 3, "with is not supported"),
    ("unknown name", "@public\ndef f() -> int:\n    return y\n", 3, "unknown name 'y'"),
    ("unknown function", "@public\ndef f() -> int:\n    return g()\n", 3, "unknown function 'g'"),
    ("unknown method", "@public\ndef f() -> None:\n    x = [1]\n    x.sort()\n", 4, "unknown method 'sort'"),
    ("unknown storage", "@public\ndef f() -> int:\n    return self.nothing\n", 3, "no storage named"),
    ("scalar used as map", "x: int\n@public\ndef f() -> int:\n    return self.x[1]\n", 4, "is a scalar"),
    ("map used as scalar", "m: Map[int, int]\n@public\ndef f() -> None:\n    self.m = 1\n", 4, "is a Map"),
    ("len of storage", "m: Map[int, int]\n@public\ndef f() -> int:\n    return len(self.m)\n", 4, "len() of storage"),
    ("assign to constant", "X = 1\n@public\ndef f() -> None:\n    X = 2\n", 4, "cannot assign"),
    ("assign to ctx", "@public\ndef f() -> None:\n    ctx.height = 2\n", 3, "read-only"),
    ("chained assignment", "@public\ndef f() -> None:\n    a = b = 1\n", 3, "chained assignment"),
    ("slice assignment", "@public\ndef f() -> None:\n    x = [1]\n    x[0:1] = [2]\n", 4, "slice"),
    ("slice step", "@public\ndef f() -> list:\n    return [1][::2]\n", 3, "step"),
    ("require as value", "@public\ndef f() -> None:\n    x = require(True)\n", 3, "is a statement"),
    ("append as value", "@public\ndef f() -> None:\n    x = [].append(1)\n", 3, "returns nothing"),
    ("range outside for", "@public\ndef f() -> None:\n    x = range(3)\n", 3, "only allowed as the iterable"),
    ("while else", "@public\ndef f() -> None:\n    while False:\n        pass\n    else:\n        pass\n", 3, "while ... else"),
    ("for else", "@public\ndef f() -> None:\n    for i in range(1):\n        pass\n    else:\n        pass\n", 3, "for ... else"),
    ("break outside loop", "@public\ndef f() -> None:\n    break\n", 3, "break outside"),
    ("wrong builtin arity", "@public\ndef f() -> int:\n    return min(1)\n", 3, "takes 2 arguments"),
    ("keyword to builtin", "@public\ndef f() -> int:\n    return abs(x=1)\n", 3, "no keyword"),
    ("internal arity", "def g(a):\n    return a\n@public\ndef f() -> int:\n    return g()\n", 5, "takes 1 arguments"),
    ("record positional", "class R(Record):\n    a: int\n@public\ndef f() -> None:\n    r = R(1)\n", 5, "keyword arguments only"),
    ("record missing field", "class R(Record):\n    a: int\n    b: int\n@public\ndef f() -> None:\n    r = R(a=1)\n", 6, "missing b"),
    ("record unknown field", "class R(Record):\n    a: int\n@public\ndef f() -> None:\n    r = R(a=1, z=2)\n", 5, "no field 'z'"),
    ("event fields differ", "@public\ndef f() -> None:\n    emit(E, a=1)\n    emit(E, b=1)\n", 4, "emitted elsewhere"),
    ("event name", "@public\ndef f() -> None:\n    emit(1 + 1)\n", 3, "event name"),
    ("unknown ctx field", "@public\ndef f() -> int:\n    return ctx.gas\n", 3, "ctx has no field"),
    ("expression statement", "@public\ndef f() -> None:\n    1 + 1\n", 3, "must be a call"),
    ("integer too large", "@public\ndef f() -> int:\n    return 2 ** 70 + 99999999999999999999\n", 3, "outside"),
    ("call arity", "@public\ndef f() -> None:\n    call('x')\n", 3, "call(contract, method"),
    ("walrus", "@public\ndef f() -> None:\n    if (x := 1):\n        pass\n", 3, ":= operator"),
    ("star args", "@public\ndef f(*a) -> None:\n    pass\n", 2, "no defaults, *args"),
    ("source nested too deeply", "@public\ndef f() -> int:\n    return " + "+".join(["1"] * 5000) + "\n", 1, "nested too deeply"),
    ("function too large", "@public\ndef f() -> int:\n    x = 0\n" + "    x += 1\n" * 9000 + "    return x\n", 1,
     "split the function"),
    ("append to a stored value", "m: Map[int, list[int]]\n@public\ndef f() -> None:\n    self.m[1].append(2)\n", 4,
     "would change a copy"),
    ("assign too deep in storage", "class R(Record):\n    xs: list[int]\nm: Map[int, R]\n@public\ndef f() -> None:\n"
     "    self.m[1].xs[0] = 2\n", 6, "nested this deep"),
    ("unpack to subscript", "@public\ndef f() -> None:\n    x = [0]\n    x[0], y = [1, 2]\n", 4, "plain names"),
]


@pytest.mark.parametrize("name,source,line,fragment", ERRORS, ids=[e[0] for e in ERRORS])
def test_compile_error(name, source, line, fragment):
    with pytest.raises(CompileError) as info:
        compile_source(source, "contract.sc.py")
    err = info.value
    assert err.filename == "contract.sc.py"
    assert err.line == line, str(err)
    assert err.col >= 1
    assert fragment in err.message, str(err)
    assert str(err).startswith(f"contract.sc.py:{line}:{err.col}: ")


def test_compile_error_column_points_at_the_node():
    with pytest.raises(CompileError) as info:
        compile_source("@public\ndef f() -> int:\n    return 1 + y\n", "c.py")
    assert (info.value.line, info.value.col) == (3, 16)


# ---- differential: compiled integer expressions agree with Python's semantics -----------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_OPS = ["+", "-", "*", "//", "%"]


@st.composite
def int_expressions(draw, depth: int = 0):
    if depth >= 4 or draw(st.integers(0, 3)) == 0:
        leaf = draw(st.one_of(st.integers(-20, 20), st.sampled_from([INT_MAX, INT_MIN + 1, 2**32, -(2**31)]),
                              st.sampled_from(["a", "b"])))
        return str(leaf) if not isinstance(leaf, int) or leaf >= 0 else f"({leaf})"
    op = draw(st.sampled_from(_OPS))
    return f"({draw(int_expressions(depth + 1))} {op} {draw(int_expressions(depth + 1))})"


def _python_value(expr: str, a: int, b: int):
    """Evaluate with the VM's rules: every intermediate result must stay in range."""
    tree = __import__("ast").parse(expr, mode="eval").body

    def ev(node):
        import ast as _ast
        if isinstance(node, _ast.Constant):
            return node.value
        if isinstance(node, _ast.Name):
            return {"a": a, "b": b}[node.id]
        if isinstance(node, _ast.UnaryOp):
            v = -ev(node.operand)
        else:
            x, y = ev(node.left), ev(node.right)
            if isinstance(node.op, (_ast.FloorDiv, _ast.Mod)) and y == 0:
                raise ZeroDivisionError
            v = {_ast.Add: lambda: x + y, _ast.Sub: lambda: x - y, _ast.Mult: lambda: x * y,
                 _ast.FloorDiv: lambda: x // y, _ast.Mod: lambda: x % y}[type(node.op)]()
        if not INT_MIN <= v <= INT_MAX:
            raise OverflowError
        return v
    try:
        return "ok", ev(tree)
    except ZeroDivisionError:
        return "err", "DivisionByZero"
    except OverflowError:
        return "err", "IntegerOverflow"


@settings(max_examples=150, deadline=None)
@given(int_expressions(), st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_compiled_arithmetic_matches_python(expr, a, b):
    src = f"@public\ndef main(a: int, b: int) -> int:\n    return {expr}\n"
    result = run(src, args=[a, b])
    kind, expected = _python_value(expr, a, b)
    if kind == "ok":
        assert result.ok and result.return_value == expected, (expr, result)
    else:
        assert result.error == expected, (expr, result)
