"""`python -m tn.organism summary`: several targets runs side by side, verdicts recomputed from their values."""

from __future__ import annotations

import json

import pytest

from tests.conftest import passing_targets, summary_cells
from tn.organism.__main__ import main
from tn.organism.summary import CLAUSES, load, table
from tn.organism.targets import LangTargets, to_json


def _write(directory, *results: LangTargets):
    directory.mkdir()
    (directory / "targets.json").write_text(json.dumps(to_json(list(results))), encoding="utf-8")
    return directory


def test_the_summary_has_a_row_for_each_clause_of_the_targets():
    assert [c.name for c in CLAUSES] == list(passing_targets().checks())


def test_each_cell_counts_the_runs_that_meet_the_clause_and_spans_its_value(tmp_path, capsys):
    runs = [
        _write(tmp_path / "seed0", passing_targets("ja"), passing_targets("nl", f1_en_ablated=0.9)),
        # Dutch's English exactly on its bound (1.00 -> 0.95) meets it; Japanese's set costs only 0.1
        _write(tmp_path / "seed1", passing_targets("ja", f1_ablated=0.8),
               passing_targets("nl", f1_en_ablated=0.95)),
        _write(tmp_path / "seed2", passing_targets("ja", gap_ablated_middle=0.3)),
    ]
    main(["summary", *map(str, runs)])
    out = capsys.readouterr().out
    cells = summary_cells(out)
    assert cells["clause"] == ["ja", "nl"]  # languages in the order the runs name them
    assert cells["3 f1 ablated delta <= -0.2"] == ["2/3 (-0.400 .. -0.100)", "2/2 (-0.400)"]
    assert cells["3 en f1 |delta| <= 0.05"] == ["3/3 (0.000)", "1/2 (0.050 .. 0.100)"]
    assert cells["2 gap ablated <= half clean"] == ["2/3 (0.250 .. 0.750)", "2/2 (0.250)"]
    assert cells["1 mknn |ablated delta| > 10 baseline sd"] == ["3/3 (200.000)", "2/2 (200.000)"]
    assert cells["all four targets"] == ["1/3", "1/2"]
    assert f"1. {runs[0] / 'targets.json'} (ja, nl): every target met in ja" in out
    assert f"2. {runs[1] / 'targets.json'} (ja, nl): every target met in nl" in out
    assert f"3. {runs[2] / 'targets.json'} (ja): every target met in no language" in out


def test_verdicts_come_from_the_values_not_from_the_stored_ones(tmp_path):
    record = to_json([passing_targets(f1_ablated=0.85)])
    record[0]["checks"] = {name: True for name in record[0]["checks"]}  # a stale verdict, e.g. older bounds
    (tmp_path / "targets.json").write_text(json.dumps(record), encoding="utf-8")
    assert summary_cells(table([load(tmp_path)]))["3 f1 ablated delta <= -0.2"] == ["0/1 (-0.050)"]


def test_a_zero_baseline_sd_makes_any_effect_infinitely_many_sd(tmp_path):
    run = _write(tmp_path / "r", passing_targets(mknn_mean_baseline_sd=0.0))
    assert summary_cells(table([load(run)]))["1 mknn |ablated delta| > 10 baseline sd"] == ["1/1 (inf)"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no targets.json; expected the --out directory of `python -m tn.organism targets`"),
    ('[{"lang": "ja",\n  oops}]', "targets.json:2: not JSON"),
    ('{"ja": {}}', "expected a list of per-language records"),
    ('[{"lang": "ko", "f1_clean": 0.5}]', "record 0 (ko) lacks mknn_clean_middle"),
    ("twice", "language ja appears twice"),
])
def test_a_bad_run_is_refused_with_its_file_named(tmp_path, capsys, content, message):
    good = _write(tmp_path / "good", passing_targets())
    bad = tmp_path / "bad"
    bad.mkdir()
    if content == "twice":
        content = json.dumps(to_json([passing_targets(), passing_targets()]))
    if content is not None:
        (bad / "targets.json").write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["summary", str(good), str(bad)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m tn.organism summary: error: {bad}") and message in err, err
