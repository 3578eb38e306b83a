"""The base every package stands on: errors, typed fields, safe YAML, repo paths, output, child processes."""
