"""GuideLLM performance runs (`bot.perf.guidellm`) and their candidate-vs-baseline gate (`bot.perf.compare`)."""
