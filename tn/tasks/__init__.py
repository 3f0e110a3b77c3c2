"""Evaluation tasks; importing this package registers them (one module per family of tasks)."""

from tn.tasks import mkqa, representation  # noqa: F401
