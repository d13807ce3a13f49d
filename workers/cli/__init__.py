"""The `streamcrawl` command line: one module per subcommand (`cmd_<name>.py`), see main.py."""
