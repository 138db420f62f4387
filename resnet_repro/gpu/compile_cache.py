"""torch.compile's caches carried from one device session to the next, as one file beside the results.

Compiling a network takes 30-95 s per process on the GPU machine (one device session measured it), a large
part of a 15-minute session. `torch.compiler.save_cache_artifacts()` (torch >= 2.6) serialises what this
process compiled (FX graphs, AOTAutograd, Triton kernels, autotuning) to bytes; the next session loads them
with `load_cache_artifacts()` before compiling, and compiles from the caches instead. A cache only hits
with the same torch, Triton and GPU model (an H100's misses on an H200: time lost, never correctness), so
the file's name carries the torch version and the device.

Autocast must be entered outside the compiled functions (inside, it bypasses the AOTAutograd cache:
pytorch#191106); the trainer compiles the model alone and calls it inside autocast.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from resnet_repro.runs.files import atomic_write

CACHE_FOLDER = "compile-cache"  # under the results folder


def cache_file(results_dir: str | Path, device_name: str) -> Path:
    """<results_dir>/compile-cache/torch-<version>-<device>.bin"""
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"torch-{torch.__version__}-{device_name}").strip("-").lower()
    return Path(results_dir) / CACHE_FOLDER / f"{slug}.bin"


def load(path: str | Path) -> str:
    """Load the artifacts in `path` into this process's compile caches, if the file is there.

    Returns one line saying what happened. Raises what loading raises (the preflight turns that into
    "compile cache off for this session").
    """
    path = Path(path)
    if not path.is_file():
        return f"no compile cache at {path}: compiling from scratch"
    loader = getattr(torch.compiler, "load_cache_artifacts", None)
    if loader is None:
        return f"torch {torch.__version__} cannot load compile caches (needs 2.6+)"
    info = loader(path.read_bytes())
    return f"loaded compile cache {path} ({path.stat().st_size:,} bytes){_summary(info)}"


def save(path: str | Path) -> str:
    """Write what this process compiled (and loaded) to `path`, atomically. Returns one line."""
    saver = getattr(torch.compiler, "save_cache_artifacts", None)
    if saver is None:
        return f"torch {torch.__version__} cannot save compile caches (needs 2.6+)"
    artifacts = saver()
    if artifacts is None:
        return "nothing compiled in this process: no compile cache written"
    data, info = artifacts
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(data))
    return f"saved compile cache {path} ({len(data):,} bytes){_summary(info)}"


def _summary(info) -> str:
    """ ": 3 inductor, 2 aot_autograd" from a CacheInfo (its `artifacts`: kind -> keys), or ""."""
    artifacts = getattr(info, "artifacts", None) or {}
    counts = [f"{len(keys)} {kind}" for kind, keys in artifacts.items() if keys]
    return ": " + ", ".join(counts) if counts else ""
