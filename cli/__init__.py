"""The `pitboss` command line (typer), one module per command group."""
