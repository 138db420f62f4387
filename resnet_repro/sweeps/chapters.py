"""What each chapter of the book trains at a training budget ("smoke", "quick", "full"); at budget
"results" nothing. ``book.train_chapter`` trains it; ``ci/run_notebooks.py`` runs the chapters named here
one at a time, before the others. Imports nothing, so the runner (and each of its worker processes) reads
it without importing torch or matplotlib."""

CHAPTER_EXPERIMENTS: dict[str, tuple[str, ...]] = {
    "02_degradation": ("fig1", "fig6"),
    "03_shortcuts": ("shortcuts", "fig7"),
    "03b_why_residual": ("fig7",),
    "05_cifar_results": ("table6",),
}
