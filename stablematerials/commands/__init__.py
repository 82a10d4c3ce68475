"""Subcommands of the `stablematerials` CLI, one module each (see `stablematerials.cli`)."""
