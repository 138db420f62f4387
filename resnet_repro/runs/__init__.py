"""Run folders and their records: a run's configuration, its folder and files (written atomically, read
back), its lock, weights, checkpoints and provenance."""
