"""Benchmarks: every performance claim of the README, measured side by side in one run (python -m tn.bench)."""
