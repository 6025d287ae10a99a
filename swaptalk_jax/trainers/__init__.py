"""One task per stage: its parameter groups, losses and evaluation, trained by the core."""
