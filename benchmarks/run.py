"""Run every benchmark: each ``bench_*.py`` module's ``main()``, in name order.

``make bench`` calls this. Each module prints its own section; this runner only
frames the sections and stops with a non-zero exit if one of them failed.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> ModuleType:
    """Import one benchmark module from its file."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _run_one(path: Path) -> bool:
    """Run one module's ``main()`` under a heading; True when it succeeded."""
    print(f"\n=== {path.stem} ===", flush=True)
    started = time.monotonic()
    try:
        _load(path).main()
    except Exception:
        traceback.print_exc()
        print(f"=== {path.stem}: FAILED ===", flush=True)
        return False
    print(f"=== {path.stem}: done in {time.monotonic() - started:.0f} s ===")
    return True


def main() -> int:
    """Run all benchmarks; the exit status is 1 when any of them failed."""
    # The benchmarks import their helper modules from this directory.
    sys.path.insert(0, str(HERE))
    results = [_run_one(path) for path in sorted(HERE.glob("bench_*.py"))]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
