#!/usr/bin/env python3
"""Regenerate deploy/crds/*.yaml from the resource models (run after changing a model).

Usage: python3 scripts/gen_crds.py [--check]   (--check: exit 1 if the committed files are stale)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tibackup.resources.crd import render_crds  # noqa: E402


def main(argv: list[str]) -> int:
    check = "--check" in argv
    out = ROOT / "deploy" / "crds"
    stale = []
    for name, text in render_crds().items():
        path = out / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{'stale' if check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
