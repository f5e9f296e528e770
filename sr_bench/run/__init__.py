"""Running evaluations: grid expansion and the local runner."""
