"""The code-forge calls the bot makes (pull requests, comments, statuses, merges), as a protocol and as files."""
