"""Pulumi entry point (`pulumi up`): a thin shell around mlops.program."""

from mlops.program import main

main()
