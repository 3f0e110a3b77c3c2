"""Evaluation tasks; importing this package registers them (one module per family of tasks)."""

from tn.tasks import activations, latent, lm_eval_task, mkqa, overlap, ppl, representation  # noqa: F401
