"""Markdown for people: the PR comment, the model card, the interval chart and the zoo table."""
