"""The benchmark scripts' result files: what a device session commits under data/benchmarks/."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_folder_gets_a_file_named_by_date_and_device(tmp_path):
    throughput = load("train_throughput")
    record = {"date": "2026-12-01T10:15:30+00:00", "device": "NVIDIA H200"}
    assert throughput._json_path(str(tmp_path), record) == tmp_path / "20261201T101530Z-nvidia-h200.json"
    assert throughput._json_path(str(tmp_path / "b.json"), record) == tmp_path / "b.json"


@pytest.mark.slow
def test_the_throughput_benchmark_writes_its_figures_per_network_and_mode(tmp_path):
    path = tmp_path / "bench.json"
    argv = ["--device", "cpu", "--arch", "resnet8", "--steps", "1", "--rounds", "1", "--warmup", "1"]
    load("train_throughput").main(
        [
            *argv,
            "--workers",
            "0",
            "--images",
            "300",
            "--compile",
            "off",
            "--cuda-graph",
            "off,on",
            "--json",
            str(path),
        ]
    )
    record = json.loads(path.read_text())
    assert {"device", "torch", "commit", "date", "settings"} <= set(record)
    modes = [row["mode"] for row in record["results"]]
    assert modes == ["baseline", "ours[compile=off,graph=off]", "ours[compile=off,graph=on]"]
    for row in record["results"]:
        assert row["arch"] == "resnet8" and row["ms_per_step"] > 0 and row["images_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["images_per_s"] / row["baseline_images_per_s"])
    assert "cuda_graph=eager" in record["results"][2]["speed"]
