"""Summarises Autobahn|Testsuite fuzzingclient index.json files per section; exit 1 on FAILED.

usage: summarize.py [--expect N] INDEX.json [INDEX.json ...]
Several files (one per wstest process) are merged; with --expect, a total case count other
than N is a failure too (a worker that silently ran fewer cases must not pass).
"""
import json
import sys
from collections import Counter, defaultdict

ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]

def main(paths, expect=None):
    index = {}
    for path in paths:
        with open(path) as f:
            for agent, cases in json.load(f).items():
                index.setdefault(agent, {}).update(cases)
    per_section = defaultdict(Counter)
    total = Counter()
    flagged = []
    for agent, cases in index.items():
        for case_id, result in cases.items():
            section = case_id.split(".")[0]
            behavior = result["behavior"]
            # A case whose close handshake failed counts as FAILED even if its data passed.
            if result.get("behaviorClose") == "FAILED":
                behavior = "FAILED"
            per_section[section][behavior] += 1
            total[behavior] += 1
            if behavior in ("FAILED", "NON-STRICT", "UNIMPLEMENTED"):
                flagged.append((case_id, behavior, result.get("behaviorClose")))
    print("| section | " + " | ".join(ORDER) + " |")
    print("|---|" + "---|" * len(ORDER))
    for section in sorted(per_section, key=int):
        print(f"| {section} | " + " | ".join(str(per_section[section][b]) for b in ORDER) + " |")
    print("| **all** | " + " | ".join(f"**{total[b]}**" for b in ORDER) + " |")
    for case_id, behavior, close in sorted(flagged, key=lambda x: [int(p) for p in x[0].split(".")]):
        print(f"  {behavior}: case {case_id} (close: {close})")
    print(f"{sum(total.values()) - total['FAILED']} passed, {total['FAILED']} failed")
    if expect is not None and sum(total.values()) != expect:
        print(f"expected {expect} cases, got {sum(total.values())}")
        return 1
    return 1 if total["FAILED"] else 0

if __name__ == "__main__":
    args = sys.argv[1:]
    expect = None
    if args[:1] == ["--expect"]:
        expect = int(args[1])
        args = args[2:]
    sys.exit(main(args, expect))
