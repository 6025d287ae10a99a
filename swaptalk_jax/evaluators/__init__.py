"""Split-level evaluators looked up by name (`config.evals.<name>.type`); see `common.py`."""
