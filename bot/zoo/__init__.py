"""The model zoo: variants and their naming, weights checked before any load, serving a variant, recorded results."""
