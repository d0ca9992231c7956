"""Build the report this repository declares (project.py): derivations, experiments, figures, PDF.

    python build.py                      # everything stale -> build/report.pdf, build/supplement.pdf
    python build.py --profile quick      # small configurations -> build/quick/report.pdf
    python build.py --verify             # run every derivation check, print a table
    python build.py --figure dd_curve    # regenerate one figure (its data only if stale)
    python build.py --list               # every task and figure, cached or stale
    python build.py --dry-run --explain  # what would run, and why
    python build.py --force double_descent   # recompute a task (and its shards) even if cached
    python build.py --set sgd_implicit_reg.stopping.max_epochs=5000   # change one configuration field
    python build.py --jobs 1             # one task at a time, in this process
    python build.py --scheduler tcp://host:8786   # sweep shards on a Dask cluster

A thin script: the command line lives in report/cli.py (installed as ``nndl-report``).
"""

from report.cli import entrypoint

if __name__ == "__main__":
    entrypoint()
