"""The README and the files beside it: what they quote is held to the code and the committed runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

import resnet_repro
from resnet_repro.book.notes import training_time_note
from resnet_repro.commands.cli import build_parser
from resnet_repro.runs.loaders import load_runs

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
TIMES_MARK = "<!-- training-times -->\n"


def test_the_readmes_training_times_are_the_committed_runs():
    quoted = README.split(TIMES_MARK, 1)[1].split("\n", 1)[0]
    # When runs are added or moved, paste the new line that `python -m resnet_repro status` prints.
    assert quoted == training_time_note(load_runs())


def test_every_command_in_the_readme_parses():
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    commands = [
        shlex.split(line, comments=True)[3:]
        for block in blocks
        for line in block.splitlines()
        if line.startswith("python -m resnet_repro ")
    ]
    assert ["train", "--arch", "resnet20", "--budget", "quick"] in commands  # the newcomer's one run
    for argv in commands:
        build_parser().parse_args(argv)  # exits 2 on an option the command does not take


def test_the_citation_prefers_the_paper_and_agrees_with_the_package_and_the_book():
    citation = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0" and {"message", "title", "authors"} <= set(citation)
    paper = citation["preferred-citation"]
    assert paper["title"] == "Deep Residual Learning for Image Recognition" and paper["year"] == 2016
    assert [author["family-names"] for author in paper["authors"]] == ["He", "Zhang", "Ren", "Sun"]
    assert citation["version"] == resnet_repro.__version__
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert citation["repository-code"] == config["repository"]["url"]
    assert set(citation["license"]) == {"MIT", "CC-BY-4.0"}


def test_the_license_names_both_licences_and_what_each_covers():
    text = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in text and "Permission is hereby granted, free of charge" in text
    assert "CC BY 4.0" in text and "creativecommons.org/licenses/by/4.0" in text


def test_binder_installs_the_books_pinned_versions_with_a_cpu_only_torch():
    requirements = (REPO_ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements
    constraints = [line.split()[1] for line in requirements if line.startswith("-c ")]
    assert [(REPO_ROOT / "binder" / path).resolve() for path in constraints] == [
        REPO_ROOT / "ci" / "constraints.txt"  # pip reads a nested -c relative to the file naming it
    ]
    pins = (REPO_ROOT / "ci" / "constraints.txt").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("torch==") for line in pins)  # which the index's +cpu build satisfies
    assert "-c ci/constraints.txt -e ." in (REPO_ROOT / "binder" / "postBuild").read_text(encoding="utf-8")
