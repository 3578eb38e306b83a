"""One module per subcommand; `bot.cli` registers every module here that has `register(subparsers)`."""
