"""promotion-bot: a GitOps promotion bot for compressed (quantized) LLMs."""

__version__ = "0.1.0"
