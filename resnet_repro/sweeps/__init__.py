"""Sets of runs: the named experiments, which chapter trains which, and spreading runs over GPUs."""
