"""flow --input-bits K | auto (issue 18): the auto rule, the refusals, the default flow's stage keys, one
small end-to-end auto flow."""

from __future__ import annotations

import json

import pytest

from spikeforge.arguments import ArgumentError
from spikeforge.flow_stages import Flow, FlowError, FlowOptions, digest
from spikeforge.input_width import CANDIDATES, check_input_bits, choose_width, passes, validation_size
from spikeforge.scripts.cli import main


# --- the rule -------------------------------------------------------------------------------------
def test_choose_width_keeps_the_smallest_width_within_the_tolerance():
    assert choose_width({8: 0.970, 6: 0.970, 5: 0.969, 4: 0.968, 3: 0.950}) == 4
    assert choose_width({8: 0.970, 6: 0.980, 5: 0.975}) == 5  # better than 8 bits passes too
    assert choose_width({8: 0.9, 6: 0.9, 5: 0.9, 4: 0.9, 3: 0.9, 2: 0.9}) == 2  # ties: the smallest


def test_choose_width_falls_back_to_8_and_stops_at_the_first_miss():
    assert choose_width({8: 0.97, 6: 0.96, 5: 0.96}) == 8  # nothing within 0.3 pp
    assert choose_width({8: 0.97}) == 8
    assert choose_width({8: 0.97, 6: 0.96, 5: 0.97, 4: 0.97}) == 8  # 6 misses: 5 and 4 are not reached
    assert choose_width({8: 0.97, 6: 0.97, 5: 0.90, 4: 0.97}) == 6
    with pytest.raises(ValueError):
        choose_width({6: 0.9, 4: 0.9})


def test_tolerance_boundary_is_inclusive():
    assert passes(0.897, 0.900)  # exactly 0.3 pp below
    assert not passes(0.8969, 0.900)
    assert choose_width({8: 0.900, 6: 0.897}) == 6
    assert choose_width({8: 0.900, 6: 0.897}, tolerance_pp=0.2) == 8


def test_candidates_and_validation_size():
    assert CANDIDATES[0] == 8 and list(CANDIDATES) == sorted(CANDIDATES, reverse=True)
    assert validation_size(1437) == 287 and validation_size(60000) == 5000 and validation_size(2) == 1


# --- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "9", "abc", "-1", "4.5"])
def test_flow_refuses_bad_input_bits(tmp_path, capsys, value):
    out = tmp_path / "flow"
    assert main(["flow", "--input-bits", value, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--input-bits" in err[0] and "auto" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("value", [0, 9, "abc", True, 4.0])
def test_api_refuses_bad_input_bits(tmp_path, value):
    with pytest.raises(ArgumentError, match="--input-bits"):
        check_input_bits(value)
    with pytest.raises(ArgumentError, match="--input-bits"):
        Flow(FlowOptions(out=str(tmp_path / "flow"), input_bits=value)).run()
    assert not (tmp_path / "flow").exists()


@pytest.fixture(scope="module")
def ckpt4(tmp_path_factory):
    """A checkpoint trained on the 4-bit pixel grid (records input_bits 4)."""
    from spikeforge.api import train

    out = tmp_path_factory.mktemp("ckpt4") / "train"
    return train("hoyer", "digits", out=out, epochs=1, input_bits=4, max_train=200, plots=False).checkpoint


def test_checkpoint_input_bits(tmp_path, capsys, ckpt4):
    assert Flow(FlowOptions(checkpoint=str(ckpt4))).resolve_input_bits() == 4  # the checkpoint's grid
    assert Flow(FlowOptions(checkpoint=str(ckpt4), input_bits=4)).resolve_input_bits() == 4
    for extra in (["--input-bits", "6"], ["--input-bits", "auto"]):
        assert main(["flow", "--checkpoint", str(ckpt4), *extra, "--out", str(tmp_path / "f")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--input-bits" in err[0] and "--checkpoint" in err[0], err
    with pytest.raises(FlowError, match="--nir"):
        Flow(FlowOptions(nir=str(tmp_path / "m.nir"), input_bits="auto")).resolve_input_bits()


# --- the default flow keeps its stage keys ----------------------------------------------------------
class Keyed(Exception):
    pass


def stage_key(monkeypatch, flow: Flow, call):
    def capture(self, name, key, body):
        raise Keyed(key)

    monkeypatch.setattr(Flow, "stage", capture)
    with pytest.raises(Keyed) as caught:
        call()
    return caught.value.args[0]


def test_default_input_bits_keep_the_stage_keys(monkeypatch):
    before = {"method": "hoyer", "dataset": "digits", "arch": "mlp", "seed": 0, "hidden": None, "epochs": None,
              "data_dir": None}  # the train options of the flow before --input-bits existed
    keys = {}
    for bits in (None, 8, 4):
        flow = Flow(FlowOptions(input_bits=bits))
        flow.bits = flow.resolve_input_bits()
        keys[bits] = stage_key(monkeypatch, flow, flow.train_stage)
        quant_key = stage_key(monkeypatch, flow, lambda f=flow: f.quantize_stage({"key": "t"}))
        quant_opts = {"weight_bits": 8, "rows": 8, "cols": 8, "seed": 0, "data_dir": None}
        expected = digest("quantize", flow.code["quantize"], "t", quant_opts)
        assert (quant_key == expected) == (bits != 4)
    assert keys[None] == keys[8] == digest("train", Flow(FlowOptions()).code["train"], before)
    assert keys[4] != keys[8]


# --- end to end -----------------------------------------------------------------------------------
@pytest.mark.cocotb
def test_flow_input_bits_auto_end_to_end(tmp_path, capsys, verilator_tool):
    out = tmp_path / "flow"
    args = ["flow", "--input-bits", "auto", "--epochs", "1", "--rows", "2", "--cols", "3", "--samples", "2",
            "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    sel = report["input_bits_selection"]
    val = {row["input_bits"]: row["val_accuracy"] for row in sel["candidates"]}
    assert sel["tried"][0] == 8 and list(val) == sel["tried"] and set(val) <= set(CANDIDATES)
    assert sel["chosen"] == choose_width(val) == report["headline"]["input_bits"]
    assert sel["val_size"] == validation_size(1437) and sel["tolerance_pp"] == 0.3
    # the candidates stop at the first miss, or run to the last width
    assert sel["tried"] == list(CANDIDATES) or not passes(val[sel["tried"][-1]], val[8])
    for k in sel["tried"]:
        v = json.loads((out / f"quantize-in{k}" / "validation.json").read_text())
        assert v["input_bits"] == k and v["val_accuracy"] == val[k]
        manifest = json.loads((out / f"quantize-in{k}" / "artifact" / "manifest.json").read_text())
        assert manifest["input"]["bits"] == k
    assert f"input bits: auto chose {sel['chosen']}" in printed
    md = (out / "report.md").read_text()
    assert "## Input bits (--input-bits auto)" in md and f"**{sel['chosen']}-bit inputs**" in md
    assert f"| {sel['chosen']} (chosen) |" in md and "0.3 pp" in md
    assert all(f"| {k}" in md for k in sel["tried"])

    assert main(args) == 0  # a rerun is all cache
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[")]
    assert lines and all(": cached" in ln for ln in lines), lines


def test_nir_quantize_takes_input_bits(monkeypatch):
    keys = {}
    for bits in (None, 4):
        flow = Flow(FlowOptions(nir="model.nir", input_bits=bits))
        flow.bits = flow.resolve_input_bits()
        keys[bits] = stage_key(monkeypatch, flow, lambda f=flow: f.quantize_stage({"key": "t"}))
    before = {"weight_bits": 8, "rows": 8, "cols": 8, "data_dir": None, "dataset": "digits", "timesteps": None,
              "dt": None, "input_range": None, "input_encoding": None}  # the NIR options before --input-bits
    assert keys[None] == digest("quantize", Flow(FlowOptions()).code["quantize"], "t", before) != keys[4]
