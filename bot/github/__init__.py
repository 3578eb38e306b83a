"""The bot on GitHub: Actions settings, event decisions (PRs, merge queues, the bot's own revert PRs),
the REST calls, and the `github pr` run.

Only `bot.github.api` imports PyGithub; everything else takes the small `bot.forge.protocol.Forge`
protocol (plus the few calls `GitHubForge` adds), so tests can drive it against a local server.
"""
