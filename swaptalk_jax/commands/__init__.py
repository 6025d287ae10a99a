"""Subcommands of the `swaptalk` console script; each module has `main(argv)`."""
