"""All GitPython use lives in this package: `reader` for the gate, `writer` for reverts."""
