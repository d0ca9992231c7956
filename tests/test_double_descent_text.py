"""Render tests of the double-descent section and its supplement: every verdict branch chooses its words."""

import copy

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
        group |= {
            "dead_median": "3",
            "deficit_median": "50",
            "below_prediction": "1",
            "decrease_max": "0.1",
        } | per_n
    ctx["stalls"] |= {"count": "6", "rank_ok": True, "larger_losses": True}
    return ctx


def section(ctx: dict) -> str:
    text = render("sections/double_descent.tex.j2", {"double_descent": ctx, "figure_path": str})
    return " ".join(text.split())


def test_no_stalls_above_the_count_leave_the_count_alone(base):
    assert "the count alone places the threshold" in section(base)


@pytest.mark.parametrize(
    ("verdict", "words"),
    [
        ("progress", "The stalls are slow progress, not local minima"),
        ("minima", "The stalls are not slow progress"),
        ("mixed", "Some stalls are slow progress and some local minima"),
    ],
)
def test_the_levenberg_marquardt_verdict_chooses_the_words(base, verdict, words):
    text = section(stalled(base, verdict=verdict))
    assert words in text
    assert sum(w in text for w in ("slow progress, not", "are not slow progress", "some local minima")) == 1


def test_full_rank_and_rank_deficient_stalls_read_differently(base):
    full = section(stalled(base))
    assert "residual Jacobian of full rank" in full and "lost capacity" not in full
    short = section(stalled(base, all_full=False, deficient="2"))
    assert "2 (of 3)" in short and "lost capacity" in short and "violate" not in short
    ctx = stalled(base, all_full=False)
    ctx["stalls"] |= {"rank_ok": False, "rank_off": "1"}
    assert "a bound 1 networks violate: an error" in section(ctx)


def test_the_gap_is_explained_only_when_the_larger_set_loses_more(base):
    assert "consistent with its stall points losing more" in section(stalled(base))
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
