"""Shared fixtures: the real CIFAR-10 archive from ../shared, skipped with a clear reason when absent."""

import signal
from pathlib import Path

import pytest

from resnet_repro.cifar.data import CifarData, load_cifar10

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"

# A shell starts background jobs (`pytest ... &`, nohup) with SIGINT ignored, and the ignoring is inherited
# by every process they start: the Ctrl-C tests would then test nothing. Python's own handler is what a
# user's terminal gives; the subprocesses the tests start get the default again (handlers reset on exec).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def shared_archive() -> Path:
    """<repo>/../shared/data/cifar10-jpeg.tar.gz (CI has it; a user's clone usually does not)."""
    if not SHARED_ARCHIVE.is_file():
        pytest.skip(f"needs the shared CIFAR-10 JPEG archive at {SHARED_ARCHIVE}, which is absent here")
    return SHARED_ARCHIVE


@pytest.fixture(scope="session")
def cifar_jpeg(shared_archive: Path) -> CifarData:
    """The full 50k/10k data from the shared archive. Read-only: tests must not modify its tensors.

    Goes through the default cache ($RESNET_REPRO_CACHE or ~/.cache/resnet_repro): the first run on a
    machine decodes the 60,000 JPEGs (about 12 s on 2 cores), later runs load the cache (under 1 s).
    """
    return load_cifar10(shared_archive, progress=False)
