"""`promotion.yaml` as frozen types: environments, gates, variant references, rollback and probe rules."""
