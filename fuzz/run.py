"""Run one fuzz target under atheris (libFuzzer, coverage-guided), bounded in time.

``python -m fuzz.run TARGET --seconds 60 [--workdir DIR]`` (in the ``bench`` venv, see
``scripts/setup-bench``; ``scripts/fuzz`` runs every target). The core is imported
standalone with atheris instrumentation, the corpus directory is seeded from the
reference captures (``fuzz.seeds``), and a crashing input is written to
``WORKDIR/crashes/TARGET-crash-*`` — turn each into a test in
``tests/core/test_fuzz_regressions.py``. Exit status: 0 = no finding.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
import sys

import atheris  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = ROOT / ".dev" / "fuzz"


def main() -> None:
    """Parse arguments, seed the corpus, hand over to libFuzzer (which exits the process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args, extra = parser.parse_known_args()

    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["pylontech_core"]):
        from bench._core import load_core

        load_core()
        # import every module the targets reach while instrumentation is on
        from fuzz.targets import build

        targets = build("pylontech_core")
    from fuzz.seeds import seeds

    target = targets[args.target]
    corpus = args.workdir / "corpus" / args.target
    crashes = args.workdir / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    for seed in seeds(args.target):
        name = hashlib.sha1(seed).hexdigest()
        (corpus / f"seed-{name}").write_bytes(seed)

    libfuzzer_args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={args.seconds}",
        f"-artifact_prefix={crashes}/{args.target}-",
        "-max_len=8192",
        "-rss_limit_mb=2048",
        "-timeout=10",
        "-print_final_stats=1",
        *extra,
    ]
    atheris.Setup(libfuzzer_args, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
