"""spikeforge search on SQLite: a 4-trial study, its results, resumption, stale trials, bad options.

Trials are kept cheap (1 epoch, a narrow space, 60 test images); the figures are real
(train -> quantize -> fast estimate), the point is the study's bookkeeping.
"""

from __future__ import annotations

import csv
import json
import math
import time

import pytest

from spikeforge.pareto import dominates
from spikeforge.scripts import cli
from spikeforge.search_space import FIGURES, OBJECTIVES, SPACE, Constraint, parse_constraint

optuna = pytest.importorskip("optuna")

CHEAP = ["--epochs", "1", "--images", "60", "--space", "hidden_width=32,48", "--space", "hidden_layers=1",
         "--space", "rows=2,4", "--space", "cols=2,4", "--verify-top", "0"]


def _study(out, name="spikeforge-digits-mlp"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def _run(out, *extra, trials=4):
    return cli.main(["search", "--trials", str(trials), *CHEAP, *extra, "--out", str(out)])


def test_four_trial_search_records_figures_and_front(tmp_path, capsys):
    out = tmp_path / "s"
    rc = _run(out, "--constraint", "accuracy>=0", "--constraint", "lut4<=1e9")
    assert rc == 0, capsys.readouterr().err
    study = _study(out)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4 and len({t.number for t in complete}) == 4
    assert [t.state for t in study.trials].count(optuna.trial.TrialState.RUNNING) == 0
    names = ["accuracy", "latency", "luts"]
    assert study.metric_names == names
    for t in complete:
        for key in FIGURES:
            assert key in t.user_attrs, key
        assert t.values == [t.user_attrs[OBJECTIVES[n][1]] for n in names]
        assert 0 < t.user_attrs["accuracy"] <= 1 and t.user_attrs["lut4"] > 0 and t.user_attrs["latency_us"] > 0
        assert t.params["rows"] in (2, 4) and t.params["hidden_width"] in (32, 48)
        assert t.constraints == {"accuracy>=0": pytest.approx(-t.user_attrs["accuracy"]),
                                 "lut4<=1e+09": pytest.approx(t.user_attrs["lut4"] - 1e9)}
        assert (out / "trials" / study.study_name / f"{t.number:05d}" / "artifact" / "manifest.json").is_file()

    rows = list(csv.DictReader((out / "trials.csv").open()))
    front = list(csv.DictReader((out / "pareto.csv").open()))
    assert len(rows) == 4 and 1 <= len(front) <= 4 and (out / "pareto.png").stat().st_size > 1000
    data = json.loads((out / "pareto.json").read_text())
    assert data["complete"] == 4 and [r["trial"] for r in data["front"]] == [int(r["trial"]) for r in front]
    costs = {int(r["trial"]): (-float(r["accuracy"]), float(r["latency_us"]), float(r["lut4"])) for r in rows}
    on_front = {int(r["trial"]) for r in front}
    for n, c in costs.items():  # the front is exactly the non-dominated set
        dominated = any(dominates(o, c) for m, o in costs.items() if m != n)
        assert (n in on_front) == (not dominated)

    # Rerunning with more trials continues the same study; the first four stay as they were.
    first = {t.number: t.values for t in complete}
    assert _run(out, "--constraint", "accuracy>=0", "--constraint", "lut4<=1e9", trials=5) == 0
    again = _study(out).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(again) == 5 and {t.number: t.values for t in again if t.number in first} == first


def test_stale_running_trial_is_failed_and_queued_again(tmp_path):
    """A trial left RUNNING by a dead worker (its heartbeat stopped) is failed, not lost: the
    next worker marks it FAIL after the grace period and runs its parameters again."""
    out = tmp_path / "s"
    from spikeforge.search import SearchOptions, plan
    from spikeforge.search_storage import open_storage, open_study

    space = tuple(CHEAP[i + 1] for i, a in enumerate(CHEAP) if a == "--space") + ("rows=2", "cols=2")
    p = plan(SearchOptions(out=str(out), trials=1, heartbeat=1, grace=2, epochs=1, images=60, verify_top=0,
                           space=space))
    storage = open_storage(p)
    study = open_study(p, storage, create=True)
    dead = study.ask({d.name: optuna.distributions.CategoricalDistribution(list(d.choices)) for d in p.space
                      if d.log_range is None})
    storage.record_heartbeat(dead._trial_id)  # the worker beat once, then died
    time.sleep(3)
    assert cli.main(["search", "--trials", "1", *CHEAP, "--space", "rows=2", "--space", "cols=2",
                     "--heartbeat", "1", "--grace", "2", "--out", str(out)]) == 0
    trials = _study(out).trials
    states = {t.number: t.state.name for t in trials}
    assert states[dead.number] == "FAIL"
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert {k: retry[0].params[k] for k in dead.params} == dead.params
    assert "RUNNING" not in states.values()


def test_help_states_the_space(capsys):
    with pytest.raises(SystemExit):
        cli.main(["search", "--help"])
    text = capsys.readouterr().out
    for d in SPACE:
        assert d.name in text and d.describe() in text
    for name in OBJECTIVES:
        assert name in text


@pytest.mark.parametrize("args, fragment", [
    (["--objectives", "accuracy,speed"], "--objectives"),
    (["--constraint", "accuracy>0.9"], "--constraint"),
    (["--constraint", "colour<=3"], "not a recorded figure"),
    (["--space", "rows=0,4"], "--space"),
    (["--space", "lam=1e-3:1e-5"], "--space"),
    (["--space", "skip_window=3"], "skip_window"),
    (["--trials", "0"], "--trials"),
    (["--storage", "redis://h/0"], "--storage"),
    (["--grace", "5", "--heartbeat", "5"], "--grace"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, fragment):
    assert cli.main(["search", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1, err


def test_rerun_with_other_options_is_refused(tmp_path, capsys):
    out = tmp_path / "s"
    assert _run(out, trials=1) == 0
    capsys.readouterr()
    assert cli.main(["search", "--trials", "1", *CHEAP, "--objectives", "accuracy,energy", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "other options" in err and "--study" in err


def test_out_that_search_did_not_write_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert _run(out, trials=1) == 2
    assert "--out" in capsys.readouterr().err and (out / "notes.txt").read_text() == "keep me"


def test_constraint_violation():
    c = parse_constraint("accuracy>=0.97")
    assert c == Constraint("accuracy", ">=", 0.97)
    assert c.violation({"accuracy": 0.98}) < 0 < c.violation({"accuracy": 0.9})
    assert parse_constraint("luts<=2000").figure == "lut4"
    assert math.isinf(c.violation({}))


def test_study_started_by_other_code_is_refused(tmp_path):
    """A changed trainer or cost model must not add its figures to a study of the old ones."""
    import dataclasses

    from spikeforge.search import SearchOptions, plan
    from spikeforge.search_space import SearchError
    from spikeforge.search_storage import open_storage, open_study

    p = plan(SearchOptions(out=str(tmp_path / "s"), trials=1))
    open_study(p, open_storage(p), create=True)
    changed = dataclasses.replace(p, code="0" * 16)
    with pytest.raises(SearchError, match="other spikeforge code"):
        open_study(changed, open_storage(changed), create=True)
