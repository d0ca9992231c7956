"""The science's own helpers: number formatting, statistics, I/O, checks, device, progress, figure style.

``derivations/`` and ``experiments/`` import this package and nothing of the builder
(``report/``), and it imports neither of them, so a change to the builder or to the templates
never reaches a computation's cache key (a task's key hashes the source of every project module
it imports; ``tests/test_layers.py`` holds both rules).  Compute modules use :mod:`lab.io`,
:mod:`lab.checks`, :mod:`lab.device`, :mod:`lab.progress` (a hook the builder fills with its
display) and :mod:`lab.stats`; only present modules (``*_plot.py``) use :mod:`lab.fmt` and
:mod:`lab.style`, so restyling a number or a figure reruns no computation.
"""
