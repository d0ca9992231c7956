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
        group |= {"count": "3", "any": True, "deficient": "0", "all_full": True, "lowered": "3"}
        group |= {"verdict": "progress", "decrease_min": "5", "decrease_median": "40"}
        group |= {"with_dead": "3", "deficient_dead": "3", "deficient_dead_all": True, "dead_bound": "2"}
        group |= {"below_any": True, "all_below": False}
        group |= {
            "dead_median": "3",
            "deficit_median": "50",
            "below_prediction": "1",
            "decrease_max": "0.1",
        } | per_n
    ctx["stalls"] |= {"count": "6", "rank_ok": True, "larger_losses": True, "same_relative_gap": False}
    return ctx


def section(ctx: dict) -> str:
    text = render("sections/double_descent.tex.j2", {"double_descent": ctx, "figure_path": str})
    return " ".join(text.split())


def test_no_stalls_above_the_count_leave_the_count_alone(base):
    assert "the count alone places the threshold" in section(base)


@pytest.mark.parametrize(
    ("verdict", "words"),
    [
        ("progress", "but they stopped for slow progress, not at local minima"),
        ("minima", "and they stopped at local minima, not for slow progress"),
        ("mixed", "and some stopped at local minima, some for slow progress"),
    ],
)
def test_the_levenberg_marquardt_verdict_chooses_the_words(base, verdict, words):
    text = section(stalled(base, verdict=verdict))
    assert words in text
    assert sum(w in text for w in ("slow progress, not", "local minima, not", "some for slow")) == 1


def test_full_rank_and_rank_deficient_stalls_read_differently(base):
    full = section(stalled(base))
    assert (
        "residual Jacobian of full rank" in full
        and "lost capacity" not in full
        and "rank-deficient" not in full
    )
    short = section(stalled(base, all_full=False, deficient="2"))
    assert "2 of 3 ($N=" in short and "lost capacity" in short and "an error" not in short
    assert "Every rank-deficient network has dead hidden units" in short
    assert "below $8N$ in 2 of the 2 and 2 of the 2" in short.replace(r"\num{8}", "8")
    assert "and 1 and 1 ranks fall below it, so dead units explain only part" in short
    some = section(stalled(base, all_full=False, deficient="2", deficient_dead="1", deficient_dead_all=False))
    assert "appear in 1 and 1 of the rank-deficient networks" in some and "Every rank-deficient" not in some
    every = section(stalled(base, all_full=False, all_below=True))
    assert "every rank-deficient network lies below even that bound" in every and "1 and 1 ranks" not in every
    whole = section(stalled(base, all_full=False, below_any=False))
    assert "the dead units explain the whole loss of rank" in whole and "only part" not in whole
    ctx = stalled(base, all_full=False)
    ctx["stalls"] |= {"rank_ok": False, "rank_off": "1"}
    assert "a bound 1 networks exceed, which is an error" in section(ctx)


def test_the_diagnosis_opens_with_the_threshold_against_the_count(base):
    text = section(stalled(base))
    claim = text.split("Why the threshold lies above the count.}")[1].lstrip()
    assert claim.startswith(r"The count allows interpolation from the $P_\text{eff}$ width $M=\num{22}$")
    assert r"yet every seed interpolates only from $M=\num{20}$ and $M=\num{50}$ on" in claim


def test_the_opening_says_once_that_the_data_are_our_own_process(base):
    text = section(base)
    assert text.count("The course notebook") == 1 and "The data are our own." in text
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
    assert "The course notebook" not in section(ctx) and "instead of a process of our own" in section(ctx)


def abstract(ctx: dict) -> str:
    return " ".join(render("answers/double_descent.tex.j2", {"double_descent": ctx}).split())


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"deficient": "3"},
            ": 3 of the 3 networks that stall at or above that width have lost rank below $8N$, and all were still progressing slowly;",
        ),
        (
            {"all_full": False, "deficient": "2", "verdict": "minima"},
            ": 2 of the 3 networks that stall at or above that width have lost rank below $8N$, and all stopped at local minima;",
        ),
        ({"all_full": False, "verdict": "mixed"}, "at or above that width have lost rank below $8N$;"),
        (
            {"all_full": True},
            ": all 3 networks that stall at or above that width keep full rank $8N$, and all were still progressing slowly;",
        ),
    ],
)
def test_the_abstract_states_the_threshold_against_the_count_with_the_diagnosis(base, fields, words):
    ctx = stalled(base, **{"all_full": False, "deficient": "0"} | fields)
    text = abstract(ctx)
    assert r"the threshold lies above the width $M=\num{22}$ where $P_\text{eff}=" in text
    assert words.replace("$8N$", r"$\num{8}N$") in text or words in text
    assert "lies above the width" not in abstract(base)  # no stalls examined: no diagnosis to state


def test_a_gap_equal_against_the_count_is_said_so_before_any_stall_comparison(base):
    ctx = stalled(base, excess="1.4")
    ctx["stalls"]["same_relative_gap"] = True
    text = section(ctx)
    assert "Measured against the count, the gap is the same for both sizes" in text
    assert "lose more" not in text and "does not explain why the gap" not in text
    assert "gap is the same" not in section(stalled(base))


def test_the_relative_gap_compares_effective_parameters_per_equation_at_the_thresholds():
    ctx = plot.context(hand_made_results(), threshold_diagnosis=[])["stalls"]

    def value(field: str) -> float:  # \\num{1234} -> 1234
        return float(re.sub(r"[^0-9.]", "", field))

    excess = [value(g["excess"]) for g in ctx["per_n"] if g["excess"]]
    ratios = [value(g["eff_at_M"]) / value(g["equations"]) for g in ctx["per_n"] if g["eff_at_M"]]
    assert excess and excess == pytest.approx(ratios, rel=1e-2)


def test_the_gap_is_explained_only_when_the_larger_set_loses_more(base):
    assert "whose stall points lose more" in section(stalled(base))
    ctx = stalled(base)
    ctx["stalls"]["larger_losses"] = False
    assert "does not explain why the gap" in section(ctx)


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
    text = render("supplement/double_descent.tex.j2", {"double_descent": ctx, "figure_path": str})
    assert r"\label{sup:double_descent:stalls}" in text and "longtable" in text
    assert "No examined rank exceeds the bound" in text
