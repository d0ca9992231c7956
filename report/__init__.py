"""The report builder: task graph, cache, templates and LaTeX compilation."""
