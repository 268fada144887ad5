"""Write the expected JSON beside each corpus jobspec (run by hand after reviewing changes):

    .venv/bin/python tests/jobspec/regen_corpus.py [name-filter]
"""

import json
import os
import sys

from yurt.jobspec import parse
from yurt.structs import to_wire

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
VARIABLES = {"26-cli-vars.nomad.hcl": {"count": "4", "tags": '["x", "y"]', "enabled": "false"}}


def expected_json(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    name = os.path.basename(path)
    job = parse(text, path, VARIABLES.get(name), env={}, checks=True)
    return json.dumps({"Job": to_wire(job)}, indent=2) + "\n"


def main(argv: list[str]) -> None:
    wanted = argv[1] if len(argv) > 1 else ""
    for name in sorted(os.listdir(CORPUS)):
        if name.endswith(".nomad.hcl") and wanted in name:
            path = os.path.join(CORPUS, name)
            with open(path[: -len(".nomad.hcl")] + ".json", "w", encoding="utf-8") as handle:
                handle.write(expected_json(path))
            print("wrote", name)


if __name__ == "__main__":
    main(sys.argv)
