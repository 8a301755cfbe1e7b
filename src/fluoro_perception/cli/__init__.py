"""User command lines (``fluoro-perception`` and its subcommands)."""
