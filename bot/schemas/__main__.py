"""`python -m bot.schemas`: docs/reference.md from the schemas."""

from bot.schemas import reference_markdown

print(reference_markdown(), end="")
