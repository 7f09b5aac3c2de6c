#!/usr/bin/env python3
"""Regenerate the CRDs of every API group from the resource models (run after changing a model):
deploy/crds/ (pingcap.com) and deploy/overlays/beside-tidb-operator/crds/ (tibackup's own group).

Usage: python3 scripts/gen_crds.py [--check]   (--check: exit 1 if the committed files are stale)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tibackup.resources.apigroups import GROUPS  # noqa: E402
from tibackup.resources.crd import CRD_DIRS, render_crds  # noqa: E402


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for group in GROUPS:
        out = ROOT / "deploy" / CRD_DIRS[group]
        for name, text in render_crds(group).items():
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
