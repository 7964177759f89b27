"""The README tells CPU users to install PyTorch's CPU build before anything else, and how big each path is
(issue 17 item 10: `pip install -e .` on a CPU-only machine downloaded 3 GB of CUDA libraries)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def test_the_cpu_build_comes_before_the_first_install_command():
    text = README.read_text()
    first_install = text.index("pip install -e")
    assert CPU_INDEX in text[:first_install]
    install_line = next(line for line in text[:first_install].splitlines() if CPU_INDEX in line)
    assert install_line.startswith("pip install torch")


def test_each_install_path_says_its_size():
    text = README.read_text()
    section = text[text.index("## Two commands on a fresh machine"):text.index("## The real study")]
    sizes = re.findall(r"\d+(?:\.\d+)? (?:GB|MB)", section)
    assert len(sizes) >= 4, sizes
    assert "CPU build first" in section and "plain `pip install -e .`" in section
