"""Small helpers every layer may use: CPUs available to the process, numpy <-> Arrow arrays."""
