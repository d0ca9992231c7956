"""The report's LaTeX notation: exact strings, as sympy's own test_latex.py pins them."""

import sympy as sp

from derivations.notation import latex

a, b = sp.symbols("a b")
W = sp.MatrixSymbol("W_2", 3, 4)
h = sp.MatrixSymbol("h_1", 4, 1)
delta = sp.MatrixSymbol("delta_2", 3, 1)


def test_transpose_uses_top():
    assert latex(sp.Transpose(W) * delta) == r"W_{2}^{\top} \delta_{2}"
    assert latex(delta * sp.Transpose(h)) == r"\delta_{2} h_{1}^{\top}"


def test_hadamard_uses_odot():
    assert latex(sp.HadamardProduct(delta, W * h)) == r"\delta_{2} \odot \left(W_{2} h_{1}\right)"


def test_log_and_products():
    assert (
        latex(sp.log(b) / (1 + sp.exp(a**2) + b**2)) == r"\frac{\log{\left(b \right)}}{b^{2} + e^{a^{2}} + 1}"
    )
    assert (
        latex(sp.log(b) / (1 + sp.exp(a**2) + b**2), order="rev-lex")
        == r"\frac{\log{\left(b \right)}}{1 + e^{a^{2}} + b^{2}}"
    )
    assert latex(2 * a * b) == "2 a b"


def test_settings_pass_through():
    assert latex(sp.log(b), ln_notation=True) == r"\ln{\left(b \right)}"


def test_rational_factor_of_matrix_product():
    e = sp.MatrixSymbol("e", 3, 1)
    assert latex(sp.Rational(1, 2) * e.T * e) == r"\frac{1}{2} e^{\top} e"
    assert latex(-e.T * e) == r"- e^{\top} e"


def test_derivative_of_undefined_function_at_a_point_uses_primes():
    psi = sp.Function("psi")
    x, w, b = sp.symbols("x w b")
    assert latex(sp.diff(psi(w * x + b), x, 2)) == r"w^{2} \psi''\left(w x + b\right)"
    assert latex(sp.diff(psi(w * x + b), x, 4)) == r"w^{4} \psi^{(4)}\left(w x + b\right)"


def test_power_of_a_squared_symbol_is_one_power():
    s2 = sp.Symbol("sigma^2", positive=True)
    M = sp.Symbol("M")
    assert latex(M**2 * s2**2 / 2) == r"\frac{M^{2} \sigma^{4}}{2}"
    assert latex(12 * s2**3) == r"12 \sigma^{6}"
    assert latex(s2) == r"\sigma^{2}"
    assert latex(a**3) == "a^{3}"  # an ordinary symbol is untouched


def test_matrix_sum_puts_the_minus_term_last():
    y, yhat = sp.MatrixSymbol("y", 3, 1), sp.MatrixSymbol("yhat", 3, 1)
    assert latex(yhat - y, order="none") == r"\hat{y} - y"
    assert latex(-y - yhat, order="none") == r"- y - \hat{y}"


def test_expectation_uses_blackboard_e():
    from sympy import stats

    u = stats.Normal("u", 0, 1)
    assert (
        latex(2 * stats.Expectation(sp.tanh(u) ** 2))
        == r"2 \mathbb{E}\left[\tanh^{2}{\left(u \right)}\right]"
    )


def test_the_symbol_table_follows_the_shared_conventions():
    from derivations.notation import SYMBOLS

    meaning = {n.symbol: n.meaning for n in SYMBOLS}
    assert meaning[r"\sigma^2"] == "variance of the initial weights"  # Exercise 3 only; noise is τ²
    assert r"\tau^2" in next(m for s, m in meaning.items() if s.startswith(r"\bm\varepsilon"))
    assert meaning[r"\mu"] == "learning rate of SGD" and meaning[r"\lambda"] == "weight-decay rate"
    assert len(meaning) == len(SYMBOLS)  # one row per symbol


def test_the_symbol_table_points_only_at_sections_that_exist():
    from derivations.notation import SYMBOLS
    from report.document import notation

    rows = notation(SYMBOLS, ["autodiff", "initialization"])
    assert {str(r["symbol"]) for r in rows} >= {"a, b, z", r"\sigma^2", "M"}
    assert r"\mu" not in {str(r["symbol"]) for r in rows}  # used only in Section sgd_implicit_reg
    by_symbol = {str(r["symbol"]): str(r["sections"]) for r in rows}
    assert by_symbol["M"] == r"\labelcref{sec:initialization}"
    assert by_symbol[r"\psi"] == r"\labelcref{sec:initialization}"
