"""Progress: quiet periodic log lines when nobody watches a terminal (SLURM, pipes)."""

from __future__ import annotations

import logging

from tn.infra import progress as P


def test_non_tty_progress_logs_lines_and_yields_everything(monkeypatch, caplog):
    monkeypatch.setattr(P, "LOG_EVERY_S", 0.0)
    monkeypatch.setattr(P, "interactive", lambda: False)
    with caplog.at_level(logging.INFO, logger="tn.infra.progress"):
        assert list(P.progress(range(3), 3, "work")) == [0, 1, 2]
    assert "work: 1/3 (33%)" in caplog.text and "work: 3/3 done" in caplog.text


def test_disabled_progress_is_silent(caplog):
    with caplog.at_level(logging.INFO, logger="tn.infra.progress"):
        assert list(P.progress(range(3), 3, "work", enabled=False)) == [0, 1, 2]
    assert caplog.text == ""


def test_slurm_is_never_interactive(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    assert not P.interactive()
