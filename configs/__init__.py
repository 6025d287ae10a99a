"""Experiment configs: `get_config(arg)` per stage, variants chosen by the arg string."""
