"""The code-forge calls the bot makes (pull requests, comments, statuses), as a protocol and as files."""
