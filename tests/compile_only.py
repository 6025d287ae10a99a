"""Compiling a program a test never runs (the paper-size steps: does it partition and compile on 8
devices, what memory and FLOPs per device) without LLVM's optimisation of the CPU code.

XLA's HLO passes, SPMD partitioning and buffer assignment are unchanged, so the checks and the
printed memory and FLOP figures are the same as a default compile's; only the machine code, which
nothing executes, is less optimised. Measured on the paper-size lip-sync `unet` step in one
process: the same FLOPs and memory per device, the compile 107.6 -> 82.3 CPU seconds (-24%).
"""
import jax

# XLA debug options, passed per compile (not XLA_FLAGS: every other program keeps its optimised
# code, and the persistent compilation cache keys these programs apart).
OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def compile_only(lowered: jax.stages.Lowered) -> jax.stages.Compiled:
  """`lowered.compile()` for a program that is inspected, never executed."""
  return lowered.compile(OPTIONS)
