"""The stage: a pair of modules joined by a results directory on disk, found by its stem.

Which stages a report is made of, and in which order, is the project's declaration
(``project.py``, read by :mod:`report.project`); the builder finds a stage's parts by its stem
``X``: the compute module ``X.py``, the present module ``X_plot.py`` beside it, the section
template ``templates/sections/X.tex.j2``, and optionally ``templates/answers/X.tex.j2`` and
``templates/method/X.tex.j2``, the stage's fragments of the abstract.

``compute`` module (e.g. ``experiments/double_descent.py``), never imports matplotlib, and imports
torch inside the functions that compute (listing the tasks imports the module, not torch):
    ``Config``                       frozen dataclass; every field JSON-serialisable
    ``PROFILES: dict[str, Config]``  every profile the project declares (here ``"full"``, and
                                     ``"quick"``: seconds, for tests)
    ``run(config) -> Results``       the computation, deterministic under ``config.seed``
    ``save(results, directory)``     write any files into an existing empty directory
    ``load(directory) -> Results``
    ``check() -> list[Check]``       optional (derivations): independent verification
    ``shards(config) -> {name: spec}``  optional (sweeps): the stage in independent pieces, each a
                                     cached task keyed by its JSON spec and the code only
    ``run_shard(spec) -> {name: ndarray}``  one piece, on any worker; sets no thread count
    ``gather(config, parts) -> Results``   parts by shard name; ``run`` must equal
                                     ``gather(config, {k: run_shard(s) for k, s in shards(config).items()})``

``present`` module (e.g. ``experiments/double_descent_plot.py``), never imports torch, and imports
matplotlib inside its plot functions (only the figure tasks draw):
    ``FIGURES: dict[str, Callable[[Results], Figure]]``  figure name -> plot function
    ``context(results, **analyses) -> dict``  values for ``templates/sections/<stem>.tex.j2``;
                                     numbers go through :mod:`lab.fmt`; ``analyses``: the loaded
                                     results of the stage's derived analyses, by their stems

``analysis`` module (optional, declared in ``project.py``'s ``ANALYSES``, e.g.
``experiments/threshold_diagnosis.py``): a costly computation *on* a stage's results, cached apart
from the stage, so that changing it reruns the analysis alone and never the stage (which may be
a long sweep), and changing a template or a present module reruns neither:
    ``STAGE: str``                   the stem of the stage whose results it reads
    ``analyze(results) -> Analysis`` deterministic in the stage's results (and its config)
    ``save(analysis, directory)``, ``load(directory) -> Analysis``
    ``check(analysis) -> list[Check]``  optional: claims the text relies on, about the results; the
                                     analysis's task records them beside its results, and they
                                     join the derivations' checks in the verification table (under
                                     the stage's section), the build's exit code and ``--verify``
Its task (named by its stem) depends on the stage's data task and on the analysis module's code
(and what it imports); the stage's present module receives the loaded analysis as a keyword
argument of ``context``.

Compute and presentation are separate modules so that restyling a figure or rewording
a sentence never invalidates the cached computation (the cache key of a task hashes the
source of the modules it imports).  Figure names are task names: unique across stages, and a
clash with a stem, another figure or the builder's own tasks is an error.
"""

from dataclasses import dataclass
from importlib import import_module
from types import ModuleType


@dataclass(frozen=True)
class Stage:
    stem: str  # names the data directory, the template section and the context namespace
    compute: str  # dotted module name
    present: str  # dotted module name

    @classmethod
    def named(cls, compute: str) -> "Stage":
        """The stage whose compute module is ``compute``, by the stem convention.

        >>> Stage.named("experiments.double_descent")
        Stage(stem='double_descent', compute='experiments.double_descent', present='experiments.double_descent_plot')
        """
        return cls(compute.rpartition(".")[2], compute, f"{compute}_plot")

    def compute_module(self) -> ModuleType:
        return import_module(self.compute)

    def present_module(self) -> ModuleType:
        return import_module(self.present)


@dataclass(frozen=True)
class Analysis:
    """A derived analysis: a module computing on one stage's results (the contract above)."""

    stem: str  # names its task, its data directory and its keyword in the stage's context
    module: str  # dotted module name

    @classmethod
    def named(cls, module: str) -> "Analysis":
        """The analysis whose module is ``module``.

        >>> Analysis.named("experiments.threshold_diagnosis").stem
        'threshold_diagnosis'
        """
        return cls(module.rpartition(".")[2], module)

    def compute_module(self) -> ModuleType:
        return import_module(self.module)

    @property
    def stage(self) -> str:
        """The stem of the stage it reads."""
        return self.compute_module().STAGE
