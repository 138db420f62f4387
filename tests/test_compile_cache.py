"""torch.compile's caches saved next to the results and loaded in the next session (compile_cache.py)."""

import torch

from resnet_repro.gpu import compile_cache


def test_saved_artifacts_load_again(tmp_path):
    compiled = torch.compile(lambda x: torch.sin(x) * 2 + 1)  # a few seconds of C++ compiling on the CPU
    x = torch.randn(8)
    expected = compiled(x)
    path = compile_cache.cache_file(tmp_path, "AMD EPYC")
    assert compile_cache.save(path).startswith(f"saved compile cache {path}")
    assert path.is_file() and path.stat().st_size > 0
    torch._dynamo.reset()  # as a new process: nothing compiled in memory
    assert compile_cache.load(path).startswith(f"loaded compile cache {path}")
    assert torch.equal(torch.compile(lambda x: torch.sin(x) * 2 + 1)(x), expected)


def test_a_missing_cache_is_no_error_and_the_name_says_torch_and_device(tmp_path):
    path = compile_cache.cache_file(tmp_path / "results", "NVIDIA H200")
    assert path.parent == tmp_path / "results" / "compile-cache"
    assert path.name == f"torch-{torch.__version__.replace('+', '-').lower()}-nvidia-h200.bin"
    assert compile_cache.load(path).startswith("no compile cache")
