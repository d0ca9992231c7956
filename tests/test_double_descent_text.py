"""Render tests of the double-descent section and its supplement: every verdict branch chooses its words."""

import copy
import re

import pytest

from experiments import double_descent_plot as plot
from report.render import render
from tests.test_double_descent import hand_made_results


@pytest.fixture(scope="module")
def base() -> dict:
    return plot.context(hand_made_results(), threshold_diagnosis=[])


def stalled(base: dict, **per_n) -> dict:
    """``base`` with a stall diagnosis of 3 networks for each N, fields of ``per_n`` applied to both."""
    ctx = copy.deepcopy(base)
    for group in ctx["stalls"]["per_n"]:
        group |= {"count": "3", "any": True, "deficient": "0", "all_full": True, "full": "3"}
        group |= {"verdict": "moving", "stationary": "0", "lm_little": True, "decrease_max": "0.1"}
        group |= {"with_dead": "3", "deficient_dead": "3", "deficient_dead_all": True, "dead_bound": "2"}
        group |= {"below_any": True, "all_below": False, "gradient_min": "0.5", "gradient_max": "1.5"}
        group |= {"dead_median": "3", "deficit_median": "50", "below_prediction": "1"} | per_n
    ctx["stalls"] |= {"count": "6", "rank_ok": True, "larger_losses": True, "same_relative_gap": False}
    ctx["stalls"] |= {
        "full_any": True,
        "full_ill": True,
        "full_smallest_min": "10^{-6}",
        "full_smallest_max": "10^{-4}",
    }
    ctx["stalls"] |= {"gradient_min": "0.5", "gradient_max": "1.5", "stationary_level": "10^{-6}"}
    return ctx


def supplement(ctx: dict) -> str:
    text = render("supplement/double_descent.tex.j2", {"double_descent": ctx, "figure_path": str})
    return " ".join(text.split())


def section(ctx: dict) -> str:
    text = render("sections/double_descent.tex.j2", {"double_descent": ctx, "figure_path": str})
    return " ".join(text.split())


def test_no_stalls_above_the_count_leave_the_count_alone(base):
    assert "the count alone places the threshold" in section(base)


@pytest.mark.parametrize(
    ("verdict", "words"),
    [
        ("moving", "None stopped at a local minimum, nor even at a stationary point"),
        ("stationary", "All stopped at stationary points"),
        ("mixed", "of them stopped at stationary points"),
    ],
)
def test_the_stationarity_verdict_chooses_the_words(base, verdict, words):
    text = section(stalled(base, verdict=verdict))
    assert words in text
    assert sum(w in text for w in ("None stopped", "All stopped", "of them stopped at")) == 1
    assert ("local minimum" in text) == (verdict == "moving")  # a minimum is named only to be ruled out


def test_the_levenberg_marquardt_result_chooses_whose_slowness_it_is(base):
    little = section(stalled(base))
    assert "lower the training MSE by at most 0.1" in little and "not L-BFGS's alone" in little
    more = section(stalled(base, lm_little=False))
    assert "by up to 0.1" in more and "still makes progress where L-BFGS stopped" in more
    assert "not L-BFGS's alone" not in more


def test_full_rank_and_rank_deficient_stalls_read_differently(base):
    full = section(stalled(base))
    assert "residual Jacobian of full rank" in full and "ill-conditioned" in full
    assert "lost capacity" not in full and "The other" not in full
    short = section(stalled(base, all_full=False, deficient="2", full="1"))
    assert "2 of 3 ($N=" in short and "lost capacity" in short
    assert "The other 1 and 1 keep full rank" in short and "ill-conditioned" in short
    ctx = stalled(base, all_full=False, deficient="2", full="1")
    ctx["stalls"]["full_ill"] = False
    assert "ill-conditioned" not in section(ctx) and "The other 1 and 1 keep full rank" in section(ctx)
    ctx = stalled(base, all_full=False, deficient="3", full="0")
    ctx["stalls"]["full_any"] = False
    assert "The other" not in section(ctx)


def test_the_supplement_explains_the_lost_rank_by_dead_units(base):
    short = supplement(stalled(base, all_full=False, deficient="2"))
    assert "Every rank-deficient network has dead hidden units" in short
    assert "below $8N$ in 2 of the 2 and 2 of the 2" in short.replace(r"\num{8}", "8")
    assert "and 1 and 1 ranks fall below it, so dead units explain only part" in short
    some = supplement(
        stalled(base, all_full=False, deficient="2", deficient_dead="1", deficient_dead_all=False)
    )
    assert "appear in 1 and 1 of the rank-deficient networks" in some and "Every rank-deficient" not in some
    every = supplement(stalled(base, all_full=False, all_below=True))
    assert "every rank-deficient network lies below even that bound" in every and "1 and 1 ranks" not in every
    whole = supplement(stalled(base, all_full=False, below_any=False))
    assert "the dead units explain the whole loss of rank" in whole and "only part" not in whole
    ctx = stalled(base, all_full=False)
    ctx["stalls"] |= {"rank_ok": False, "rank_off": "1"}
    assert "a bound 1 networks exceed, which is an error" in supplement(ctx)
    assert "dead hidden units" not in supplement(stalled(base))  # full rank: nothing lost to explain
    assert "Every rank-deficient" not in section(stalled(base, all_full=False))  # the submission points there


def test_the_diagnosis_opens_with_the_threshold_against_the_count(base):
    text = section(stalled(base))
    claim = text.split("Why the threshold lies above the count.}")[1].lstrip()
    assert claim.startswith(r"The count allows interpolation from the $P_\text{eff}$ width $M=\num{22}$")
    assert r"yet the median network interpolates only from $M=\num{20}$ and $M=\num{50}$ on" in claim


def test_the_opening_says_once_that_the_data_are_our_own_process(base):
    text = section(base)
    assert (
        text.count("course notebook") == 1 and text.count("our own") == 1 and "The data are our own:" in text
    )
    assert "Our own (see" not in text
    assert "optimal test error $R_t$" in text.split(r"\subsection")[0]
    ctx = copy.deepcopy(base)
    ctx["data"] = {
        "kind": "callable",
        "spec": "m:f",
        "digest": "ab",
        "r_t": "1",
        "var_y": "2",
        "estimated": False,
    }
    assert "course notebook" not in section(ctx) and "instead of a process of our own" in section(ctx)


def abstract(ctx: dict) -> str:
    return " ".join(render("answers/double_descent.tex.j2", {"double_descent": ctx}).split())


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"deficient": "3"},
            "of the 3 networks that stall at or above that width, 3 have lost Jacobian rank, and none",
        ),
        (
            {"deficient": "2", "verdict": "stationary"},
            "2 have lost Jacobian rank, and all stopped at stationary points.",
        ),
        ({"deficient": "2", "verdict": "mixed"}, "2 have lost Jacobian rank."),
        (
            {"all_full": True},
            "that width, none has lost Jacobian rank, and none stopped at a stationary point.",
        ),
    ],
)
def test_the_abstract_states_the_threshold_against_the_count_with_the_diagnosis(base, fields, words):
    ctx = stalled(base, **{"all_full": False, "deficient": "0"} | fields)
    ctx["first"] |= {"M": "24", "settled_M": "26", "settled_same": False}
    text = abstract(ctx)
    assert (
        r"the median network first interpolates at $M=24$, the interpolation threshold (every seed from"
        in text
    )
    assert r"The effective parameters would allow interpolation from $M=\num{22}$;" in text
    assert words in text and "local minim" not in text
    assert "would allow interpolation" not in abstract(base)  # no stalls examined: no diagnosis to state
    assert "(every seed from" not in abstract(base)  # every seed interpolates at the threshold itself


def test_a_gap_equal_against_the_count_is_said_so_before_any_stall_comparison(base):
    ctx = stalled(base, excess="1.4", all_full=False)
    ctx["stalls"]["same_relative_gap"] = True
    text = supplement(ctx)
    assert "Measured against the count, the gap is the same for both sizes" in text
    assert "lose more" not in text and "does not explain why the gap" not in text
    assert "gap is the same" not in supplement(stalled(base, all_full=False))


def test_the_relative_gap_compares_effective_parameters_per_equation_at_the_thresholds():
    ctx = plot.context(hand_made_results(), threshold_diagnosis=[])["stalls"]

    def value(field: str) -> float:  # \\num{1234} -> 1234
        return float(re.sub(r"[^0-9.]", "", field))

    excess = [value(g["excess"]) for g in ctx["per_n"] if g["excess"]]
    ratios = [value(g["eff_at_M"]) / value(g["equations"]) for g in ctx["per_n"] if g["eff_at_M"]]
    assert excess and excess == pytest.approx(ratios, rel=1e-2)


def test_the_gap_is_explained_only_when_the_larger_set_loses_more(base):
    assert "whose stall points lose more" in supplement(stalled(base))
    ctx = stalled(base)
    ctx["stalls"]["larger_losses"] = False
    assert "does not explain why the gap" in supplement(ctx)


def answer_c(ctx: dict) -> str:
    return section(ctx).split("Double descent over")[1].split(r"\begin{figure}")[0]


@pytest.mark.parametrize(
    ("in_peak", "side", "words"),
    [
        (True, -1, "The median peak sits one step below the threshold because"),
        (True, 0, "and the median peak is at the threshold"),
        (False, 1, "the median peak sits above it"),
    ],
)
def test_the_peak_is_placed_against_the_threshold_with_the_same_statistic(base, in_peak, side, words):
    ctx = copy.deepcopy(base)
    ctx["first"] |= {"threshold_in_peak": in_peak, "peak_vs_threshold": side, "peak_noise_pct": "0.54"}
    text = answer_c(ctx)
    assert words in text
    assert ("The threshold lies inside the peak's interval" in text) == in_peak
    assert ("all but 0.54" in text) == (side < 0)  # the offset's reason only where the peak is below


def test_every_seed_width_is_named_beside_the_median_threshold_only_when_it_differs(base):
    assert "Every seed interpolates from" not in answer_c(base)  # hand-made: the same width
    ctx = copy.deepcopy(base)
    ctx["n_seeds"] = "10"
    ctx["first"] |= {
        "settled_same": False,
        "settled_M": "26",
        "failures": [{"M": "24", "count": "9"}, {"M": "25", "count": "8"}],
    }
    assert "Every seed interpolates from $M=26$ on (9 of 10 at $M=24$, 8 of 10 at $M=25$)." in answer_c(
        ctx
    ).replace(r"\num{10}", "10")


def test_the_tables_name_every_column(base):
    text = section(stalled(base))
    assert "LM lowers" not in text and "& every seed & peak & stalled" in text
    assert r"median & interval & $N=\num{100}$ & $N=\num{200}$" in text  # Table 6: both ratios labelled


@pytest.mark.parametrize(
    ("hurts", "slight", "words"),
    [
        (True, True, "more data hurts only slightly: the median paired rise of the test MSE is"),
        (True, False, "more data hurts: the median paired rise of the test MSE is"),
        (False, True, "does not change measurably"),
    ],
)
def test_the_overparameterized_width_is_not_said_to_move_back_to_the_peak(base, hurts, slight, words):
    ctx = copy.deepcopy(base)
    ctx["more_data"][-1] |= {"hurts": hurts, "helps": False, "slight": slight, "diff_pct": "9.9"}
    text = section(ctx).split("Explanation.")[1]
    assert "back towards the peak" not in text and words in text


@pytest.mark.parametrize(
    ("hurts", "helps", "words"),
    [
        (True, False, "more data hurts"),
        (False, True, "more data helps"),
        (False, False, "does not distinguish from zero"),
    ],
)
def test_item_d_opens_with_the_verdict_of_its_interval(base, hurts, helps, words):
    ctx = copy.deepcopy(base)
    for row in ctx["more_data"]:
        row |= {"hurts": hurts, "helps": helps}
    answer = section(ctx).split(r"(d) Retraining")[1].split("Explanation")[0]
    assert words in answer


def test_the_supplement_renders_the_stall_table_and_the_check(base):
    ctx = stalled(base)
    ctx["stalls"]["rows"] = [
        {
            k: "1"
            for k in (
                "n",
                "M",
                "seed",
                "P_eff",
                "loss",
                "rank",
                "predicted",
                "gap",
                "smallest",
                "dead",
                "active",
            )
        }
        | {"lm_loss": "0.5", "decrease": "50"}
    ]
    ctx["stalls"]["rows"][0] |= {"gradient": "0.7"}
    text = supplement(ctx)
    assert r"\label{sup:double_descent:stalls}" in text and "longtable" in text
    assert "No examined rank exceeds the bound" in text and "& gradient & after LM" in text
    assert "median paired difference" in text and "mean paired" not in text
    assert text.count("some seeds interpolate") <= len(ctx["stalls"]["per_n"])
