"""The cocotb testbench modules, run inside the HDL simulator (sim/rtl/runner.py puts this folder
on the simulator's Python path). They ship with the package so an installed spikeforge can verify."""
