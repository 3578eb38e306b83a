"""The environments as Argo CD applies them: manifests, kustomize, and the promotions a PR makes."""
