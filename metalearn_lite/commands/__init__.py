"""Subcommands of the ``metalearn`` command line (one module each, see ``cli.py``)."""
