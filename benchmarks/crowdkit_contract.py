"""Crowd-Kit's own aggregation tests, run against crowdzoo.aggregation (the drop-in contract).

``crowdzoo.aggregation`` promises that a Crowd-Kit script runs by changing its import. The
strictest such script is Crowd-Kit's own test suite. This script

1. copies Crowd-Kit's ``tests/conftest.py`` and the classification tests of
   ``tests/aggregation`` (with their data fixtures) from a clone of Crowd-Kit's repository
   (PyPI's sdist does not ship them) into a scratch folder;
2. rewrites ``from crowdkit.aggregation import ...`` to a shim that takes every estimator
   ``crowdzoo.aggregation`` offers from crowdzoo and the rest from Crowd-Kit (helpers such as
   ``crowdkit.aggregation.utils`` stay Crowd-Kit's);
3. runs pytest twice — once with the shim pointing at Crowd-Kit only (the baseline: what
   Crowd-Kit 1.4 itself passes on this stack), once with crowdzoo's estimators — and
4. writes ``benchmarks/results/crowdkit_contract.md``: pass / fail counts for both, and every
   test whose outcome differs or that fails with crowdzoo, with the first line of its error.

Facts carry over, code does not: nothing here is copied into the project; crowdzoo's own
tests of the same behaviours are ``tests/test_crowdkit_contract.py``.

Usage::

    python benchmarks/crowdkit_contract.py [--repo PATH_TO_CROWD_KIT_CLONE] [--commit 35f0661]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "crowdkit_contract.md"
DEFAULT_REPO = "/work/.mirror/Toloka+crowd-kit/repo"
DEFAULT_COMMIT = "35f0661"  # = the 1.4.2 release's code
TEST_FILES = (
    "test_classification_aggregation.py",
    "test_classification_aggregation_edge_cases.py",
    "test_ds_aggregation.py",
    "test_glad_aggregation.py",
    "test_kos_aggregation.py",
    "test_mace_aggregation.py",
    "test_majority_vote.py",
)
#: why a test fails with crowdzoo's estimators, by design or by Crowd-Kit's own doing
WHY = {
    "Majority Vote predict": "Crowd-Kit fails it too: its fixture's tie order predates pandas 3 "
                             "(one tied task)",
    "Wawa predict labels on simple": "the same tied task as MajorityVote's (Wawa starts from "
                                     "the vote): two workers' skills differ by 1/6",
    "Wawa predict probabilities on simple": "the same tied task as MajorityVote's",
    "test_dawid_skene_step_by_step[1]": "by design: our probas_ is the E-step at the final "
                                        "parameters; Crowd-Kit's is one E-step behind",
    "test_glad_derivative": "calls Crowd-Kit's private GLAD._init / _gradient_Q",
    "test_glad_e_step": "calls Crowd-Kit's private GLAD._init / _e_step",
    "test_aggregate_mace_on_simple[em]": "Crowd-Kit's thetas_ M-step reads its counts in sorted "
                                         "worker/label order against first-appearance codes; "
                                         "the fixture (accuracy 0.9) records that; ours: 1.0",
    "test_thetas_on_simple": "the same misaligned thetas_ M-step; ours equal Crowd-Kit's to "
                             "1e-9 where its orders agree (tests/test_mace.py)",
}
SHIM = '''"""Estimators from crowdzoo.aggregation where it offers them (CONTRACT_IMPL=crowdzoo)."""
import os

from crowdkit.aggregation import *  # noqa: F401,F403

if os.environ.get("CONTRACT_IMPL") == "crowdzoo":
    from crowdzoo.aggregation import *  # noqa: F401,F403
'''


def git_show(repo: str, commit: str, path: str) -> str:
    """Return a file of the Crowd-Kit clone at ``commit``."""
    return subprocess.run(["git", "--git-dir", repo, "show", f"{commit}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def git_ls(repo: str, commit: str, folder: str) -> list[str]:
    """List the files of ``folder`` at ``commit``."""
    out = subprocess.run(["git", "--git-dir", repo, "ls-tree", "--name-only", commit,
                          folder + "/"], check=True, capture_output=True, text=True).stdout
    return out.split()


def stage(repo: str, commit: str, root: Path) -> None:
    """Copy conftest, the data fixtures and the classification tests; rewrite the imports."""
    if not Path(repo, "HEAD").exists() and Path(repo, ".git").exists():
        repo = str(Path(repo, ".git"))
    agg = root / "tests" / "aggregation"
    agg.mkdir(parents=True)
    (root / "tests" / "__init__.py").write_text("")
    (root / "tests" / "conftest.py").write_text(git_show(repo, commit, "tests/conftest.py"))
    (agg / "_impl.py").write_text(SHIM)
    for path in git_ls(repo, commit, "tests/aggregation"):
        name = Path(path).name
        if name == "__init__.py" or name.startswith("data_") or name in TEST_FILES:
            text = git_show(repo, commit, path)
            text = re.sub(r"from crowdkit\.aggregation import", "from ._impl import", text)
            (agg / name).write_text(text)


def run(root: Path, impl: str) -> dict[str, tuple[str, str]]:
    """Run pytest with the shim on ``impl``; return ``{test id: (outcome, first error line)}``."""
    xml = root / f"junit_{impl}.xml"
    env = dict(os.environ, CONTRACT_IMPL=impl)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-p", "no:randomly", "-n", "0", "--rootdir", str(root), "-c", os.devnull,
                    f"--junitxml={xml}", "tests/aggregation"], cwd=root, env=env,
                   capture_output=True, text=True)
    out = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        tid = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        outcome, msg = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                msg = (node.get("message") or "").strip().splitlines()
                msg = msg[0][:160] if msg else ""
                break
        out[tid] = (outcome, msg)
    return out


def main() -> None:  # noqa: D103
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=DEFAULT_REPO, help="a clone (git dir) of Toloka/crowd-kit")
    ap.add_argument("--commit", default=DEFAULT_COMMIT)
    args = ap.parse_args()
    t0 = time.time()
    root = Path(tempfile.mkdtemp(prefix="crowdkit_contract_"))
    try:
        stage(args.repo, args.commit, root)
        results = {impl: run(root, impl) for impl in ("crowdkit", "crowdzoo")}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    import crowdkit
    import pandas
    import sklearn

    import crowdzoo.aggregation as cz

    ids = sorted(set(results["crowdkit"]) | set(results["crowdzoo"]))
    lines = [
        "# Crowd-Kit's own aggregation tests against crowdzoo.aggregation",
        f"Generated by `python benchmarks/crowdkit_contract.py` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {time.time() - t0:.0f} s; Crowd-Kit's "
        f"tests at commit {args.commit} (= release 1.4.2), crowd-kit "
        f"{crowdkit.__version__ if hasattr(crowdkit, '__version__') else '1.4.x'}, "
        f"pandas {pandas.__version__}, scikit-learn {sklearn.__version__}.",
        "",
        f"Files: {', '.join(TEST_FILES)}. Estimators taken from crowdzoo: "
        f"{', '.join(n for n in cz.__all__ if n[0].isupper() and n != 'MissingColumnError')};"
        " the rest from Crowd-Kit.",
        "",
        "| run | tests | passed | failed / error |",
        "|---|---|---|---|",
    ]
    for impl in ("crowdkit", "crowdzoo"):
        res = results[impl]
        n_pass = sum(o == "passed" for o, _ in res.values())
        lines.append(f"| {'Crowd-Kit alone' if impl == 'crowdkit' else 'with crowdzoo'} | "
                     f"{len(res)} | {n_pass} | {len(res) - n_pass} |")
    zoo, alone = results["crowdzoo"], results["crowdkit"]
    n_zoo = sum(o == "passed" for o, _ in zoo.values())
    n_alone = sum(o == "passed" for o, _ in alone.values())
    lines += ["", "<!-- begin: readme -->",
              f"Crowd-Kit's own classification tests (commit {args.commit} = 1.4.2, "
              f"{len(zoo)} tests) with every estimator crowdzoo offers in place of Crowd-Kit's:"
              f" **{n_zoo} pass** (Crowd-Kit itself, on this stack: {n_alone}; its Wawa, "
              f"ZeroBasedSkill and GoldMajorityVote crash on scikit-learn "
              f"{sklearn.__version__}). The {len(zoo) - n_zoo} that fail, and why, are listed "
              f"in `benchmarks/results/crowdkit_contract.md`.",
              "<!-- end: readme -->"]
    lines += ["", "Tests that fail with crowdzoo's estimators, or whose outcome differs:", "",
              "| test | Crowd-Kit alone | with crowdzoo | crowdzoo's error | why |",
              "|---|---|---|---|---|"]
    for tid in ids:
        a = results["crowdkit"].get(tid, ("absent", ""))
        b = results["crowdzoo"].get(tid, ("absent", ""))
        if b[0] != "passed" or a[0] != b[0]:
            msg = b[1].replace("|", "\\|")
            why = next((w for k, w in WHY.items() if k in tid), "") if b[0] != "passed" else ""
            lines.append(f"| `{tid}` | {a[0]} | {b[0]} | {msg} | {why} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
