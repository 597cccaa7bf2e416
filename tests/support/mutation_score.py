"""The mutation score per module from mutmut's results in `mutants/`, with the survivors.

`make mutation` runs this after `mutmut run`. Score = killed / (killed + survived - equivalent):
a timeout or a mutant the type checker refuses counts as killed, a mutant no test reaches counts
as survived, and a survivor listed in `tests/mutation-equivalents.md` (it cannot change behaviour)
is left out. Mutants not checked in this run (a narrowed `MUTANTS=`) are not counted at all.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from mutmut.stats import status_by_exit_code

MUTANTS = Path("mutants")
EQUIVALENTS = Path("tests/mutation-equivalents.md")
SUMMARY = MUTANTS / "mutation-score.md"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests", "suspicious"}


def equivalent_mutants() -> set[str]:
    if not EQUIVALENTS.exists():
        return set()
    return set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", EQUIVALENTS.read_text(encoding="utf-8")))


def statuses() -> dict[str, dict[str, str]]:
    by_module: dict[str, dict[str, str]] = {}
    for meta in sorted(MUTANTS.glob("**/*.py.meta")):
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        module = meta.relative_to(MUTANTS).as_posix().removesuffix(".py.meta").replace("/", ".")
        by_module[module] = {name: status_by_exit_code[code] for name, code in codes.items()}
    return by_module


def main() -> int:
    if not MUTANTS.is_dir():
        print("no mutants/ directory: run `make mutation` first", file=sys.stderr)
        return 1
    equivalent = equivalent_mutants()
    if sys.argv[1:] == ["--survivors"]:  # for `make mutation-recheck`: the names alone, one per line
        by_module = statuses().values()
        print(*sorted(n for m in by_module for n, s in m.items() if _kind(n, s, equivalent) == "survived"), sep="\n")
        return 0
    lines = [f"Mutation score, {datetime.now(UTC):%Y-%m-%d} (killed / (killed + survived - equivalent))", ""]
    lines += ["| module | mutants checked | killed | survived | equivalent | score |", "|---|---|---|---|---|---|"]
    survivors: list[str] = []
    total = Counter[str]()
    by_folder: dict[str, Counter[str]] = {}
    stale: list[str] = []
    for module, by_name in statuses().items():
        counted = Counter(_kind(name, status, equivalent) for name, status in by_name.items())
        checked = counted["killed"] + counted["survived"] + counted["equivalent"]
        if not checked:
            continue
        total.update(counted)
        by_folder.setdefault(module.split(".")[0], Counter()).update(counted)
        survivors += sorted(n for n, s in by_name.items() if _kind(n, s, equivalent) == "survived")
        # Listed as equivalent, yet killed or no longer a mutant of this source: the list needs a look.
        listed = {n for n in equivalent if n.startswith(f"{module}.")}
        stale += sorted(n for n in listed if n not in by_name or _kind(n, by_name[n], equivalent) == "killed")
        lines.append(_row(module, counted))
    lines += [_row(f"**{folder}/**", counted) for folder, counted in sorted(by_folder.items())]
    lines.append(_row("**all checked**", total))
    lines += ["", f"Survivors ({len(survivors)}), see each with `mutmut show NAME`:", *survivors]
    if stale:
        lines += ["", f"Listed in {EQUIVALENTS} but killed, or not a mutant of today's source ({len(stale)}):", *stale]
    text = "\n".join(lines) + "\n"
    SUMMARY.write_text(text, encoding="utf-8")
    print(text + f"\n(written to {SUMMARY})")
    return 0


def _kind(name: str, status: str, equivalent: set[str]) -> str:
    if status in KILLED:
        return "killed"
    if status in SURVIVED:
        return "equivalent" if name in equivalent else "survived"
    return "not checked"


def _row(module: str, counted: Counter[str]) -> str:
    killed, survived, equivalent = counted["killed"], counted["survived"], counted["equivalent"]
    checked = killed + survived + equivalent
    score = f"{100 * killed / (killed + survived):.1f}%" if killed + survived else "-"
    return f"| {module} | {checked} | {killed} | {survived} | {equivalent} | {score} |"


if __name__ == "__main__":
    sys.exit(main())
