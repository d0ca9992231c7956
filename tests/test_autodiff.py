"""Exercise 1: the graph follows the expression, the engine's gradients are right, checks can fail."""

import sympy as sp

from derivations import autodiff, autodiff_plot
from derivations.autodiff import A, B, Config, build_graph, forward, reverse_mode


def test_graph_of_z_has_expected_nodes():
    graph = build_graph(autodiff.z_expression(), (A, B))
    ops = [str(n.op) for n in graph]
    # numbered as drawn, row by row: log b sits next to the product that uses it, not at the top
    assert ops == ["a", "b", "a**2", "exp(v_1)", "b**2", "v_2 + v_3 + 1", "1/v_4", "log(b)", "v_5*v_6"]
    assert [p.name for p in graph[-1].parents] == ["v_5", "v_6"]
    rows = {s.name: row for s, (_, row) in autodiff.layout(graph).items()}
    assert [rows[n.symbol.name] for n in graph] == sorted(rows[n.symbol.name] for n in graph)
    assert rows["v_6"] == rows["v_7"] - 1  # every edge but b -> log b spans one row


def test_graph_follows_the_function():
    x, y = sp.symbols("a b")
    graph = build_graph(sp.sin(x * y) + x * y, (x, y))  # x*y is one shared node
    assert len(graph) == 2 + 3
    assert forward(graph, {x: x, y: y})[graph[-1].symbol] == sp.sin(x * y) + x * y
    tex = autodiff_plot.tikz(graph)
    assert tex.count(r"\node") == 5
    assert tex.count(r"\draw") == 5  # a, b -> ab; ab -> sin; ab, sin -> sum


def test_engine_matches_sympy_diff_on_another_function():
    x, y = sp.symbols("a b")
    f = sp.exp(x * y) / (x + y**3)
    graph = build_graph(f, (x, y))
    adjoint = reverse_mode(graph, forward(graph, {x: x, y: y}))
    for s in (x, y):
        assert sp.simplify(adjoint[s] - sp.diff(f, s)) == 0


def test_gradients_at_point():
    d = autodiff.derive(Config())
    e4, l3 = sp.exp(4), sp.log(3)
    assert sp.simplify(d["gradient"][A] - (-4 * e4 * l3 / (10 + e4) ** 2)) == 0
    assert sp.simplify(d["gradient"][B] - (1 / (3 * (10 + e4)) - 6 * l3 / (10 + e4) ** 2)) == 0
    assert float(d["gradient"][A]) == float(sp.N(-4 * e4 * l3 / (10 + e4) ** 2, 20))


def test_checks_pass():
    checks = autodiff.check()
    assert len(checks) == 7
    assert all(c.passed for c in checks)


def test_wrong_gradient_fails_every_check():
    d = autodiff.derive(Config())
    wrong = {A: d["gradient"][A] * sp.Rational(101, 100), B: d["gradient"][B]}
    wrong_symbolic = {A: d["gradient_symbolic"][A] + A * 1e-3, B: d["gradient_symbolic"][B]}
    checks = autodiff.gradient_checks(wrong, wrong_symbolic, Config())
    assert [c.passed for c in checks] == [False, False, False, True, True, True]


def test_torch_check_uses_the_stated_tolerance(monkeypatch):
    monkeypatch.setattr(autodiff, "TORCH_TOLERANCE", 0.0)  # float64 rounding now exceeds it for some partial
    d = autodiff.derive(Config())
    checks = autodiff.gradient_checks(d["gradient"], d["gradient_symbolic"], Config())
    assert {c.tolerance for c in checks if "torch" in c.method} == {0.0}


def test_broken_engine_fails_check(monkeypatch):
    # dropping the adjoint accumulation over children loses one of b's two paths (b², log b) in dz/db
    def first_child_only(graph, values):
        adjoint = {graph[-1].symbol: sp.Integer(1)}
        uses = autodiff.children(graph)
        for node in reversed(graph[:-1]):
            c = uses[node.symbol][0]
            adjoint[node.symbol] = adjoint[c.symbol] * c.partial(node.symbol).subs(values)
        return adjoint

    monkeypatch.setattr(autodiff, "reverse_mode", first_child_only)
    assert not all(c.passed for c in autodiff.check())


def test_run_save_load_roundtrip(tmp_path):
    results = autodiff.run(Config())
    autodiff.save(results, tmp_path)
    assert autodiff.load(tmp_path) == results
    assert results.torch_error < 1e-15


def test_printed_derivation():
    results = autodiff_plot.derived_rows(Config())
    assert results["adjoints"][0]["symbol"] == r"\bar{v}_{7}"
    assert (
        results["function"] == r"\frac{\log{\left(b \right)}}{1 + e^{a^{2}} + b^{2}}"
    )  # the assignment's order
    assert results["adjoints"][-1]["substituted"] == r"\bar{v}_{1} \cdot 2 a"  # a -> v_1 = a^2
    assert (
        results["gradients"][0]["exact"]
        == r"- \frac{4 e^{4} \log{\left(3 \right)}}{\left(10 + e^{4}\right)^{2}}"
    )
    assert (
        results["gradients"][1]["exact"]
        == r"\frac{- 18 \log{\left(3 \right)} + 10 + e^{4}}{3 \left(10 + e^{4}\right)^{2}}"
    )


def test_context_formats_everything():
    from lab.fmt import Tex

    ctx = autodiff_plot.context(autodiff.run(Config()))
    assert autodiff_plot.FIGURES == {}
    assert isinstance(ctx["graph"], Tex) and ctx["graph"].startswith(
        r"\begin{tikzpicture}"
    )  # LaTeX, unescaped
    assert ctx["nodes"][0]["value"] == r"\num{2}"
    assert ctx["gradients"][0]["value"] == r"\num{-0.05749660609}"
    assert [g["brief"] for g in ctx["gradients"]] == [r"\num{-0.05750}", r"\num{0.003580}"]  # the abstract's
