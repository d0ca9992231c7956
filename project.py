"""The assignment this repository typesets: the one place where the builder (``report/``) learns it.

Plain constants, read by :func:`report.project.load` (which documents each name).  A module rather
than a TOML table, like Sphinx's ``conf.py``: the names it declares are Python modules and
objects, which ruff and an editor can follow from here; and it imports nothing, so reading it
costs nothing.  Adding an exercise touches its own files (``X.py``, ``X_plot.py``,
``templates/sections/X.tex.j2``) and one line of ``STAGES``.
"""

# In the assignment's order; the report's sections follow it.
STAGES = (
    "derivations.autodiff",
    "derivations.mlp_backprop",
    "derivations.initialization",
    "experiments.double_descent",
    "experiments.sgd_implicit_reg",
)
# Derived analyses: each computes on one stage's results, cached apart from that stage (report/stages.py).
ANALYSES = ("experiments.threshold_diagnosis",)
PROFILES = ("full", "quick")  # full: the submission (build/); quick: seconds, for tests (build/quick/)
TITLE = "Neural network optimization and generalization"
COURSE = "NNDL2024, Session 2: exercises and computer assignments"
NOTATION = "derivations.notation:SYMBOLS"
DATA_SOURCE = "experiments.data"  # settings.toml's [data] source, for both computer assignments
WATCH = ("derivations", "experiments", "lab", "templates", "examples", "build.py")
