"""Sweeps that finish: job status files, resume decisions, collision-free job directories, the sweep lock."""
