"""Ahead-of-time compilation of a stage's train step for hardware this machine does not have.

`topology.py` turns a target name ('v5e:16x16', 'v5e-256', 'cpu:8') into devices and a per-device
memory budget; `batch_specs.py` gives a stage's batch shapes without reading data; `compile.py`
builds the step exactly as `swaptalk train` does (same config, mesh, shardings, train step), lowers
and compiles it for those devices, and reports memory and FLOPs. `swaptalk compile` is the command.
"""
