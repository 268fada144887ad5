"""The golden corpus: every `corpus/*.nomad.hcl` parses to the Nomad JSON beside it, the
same job written as HCL-style JSON and as an API JSON body parses to the same job, and
together the files use every block and attribute of the jobspec schema."""

import json
import os

import pytest
from .corpus_tools import hcl_to_json, schema_edges, used_edges
from .regen_corpus import CORPUS, VARIABLES

from yurt.jobspec import parse
from yurt.jobspec.hcl_syntax import parse_hcl
from yurt.structs import to_wire

FILES = sorted(n for n in os.listdir(CORPUS) if n.endswith(".nomad.hcl"))


def _read(name: str) -> str:
    with open(os.path.join(CORPUS, name), encoding="utf-8") as handle:
        return handle.read()


def _parse(text: str, name: str):
    return parse(text, os.path.join(CORPUS, name), VARIABLES.get(name), env={}, checks=True)


def test_corpus_has_at_least_60_jobspecs_each_with_expected_json():
    assert len(FILES) >= 60
    for name in FILES:
        assert os.path.exists(os.path.join(CORPUS, name[: -len(".nomad.hcl")] + ".json")), name


@pytest.mark.parametrize("name", FILES)
def test_hcl_parses_to_expected_json(name):
    with open(os.path.join(CORPUS, name[: -len(".nomad.hcl")] + ".json"), encoding="utf-8") as handle:
        expected = json.load(handle)
    assert {"Job": to_wire(_parse(_read(name), name))} == expected


# Files whose HCL uses what HCL-style JSON cannot say (dynamic blocks, heredoc templates
# with directives, for-expressions inside blocks that the JSON converter cannot quote).
_NO_JSON_TWIN = {"08-dynamic-blocks.nomad.hcl"}


@pytest.mark.parametrize("name", [n for n in FILES if n not in _NO_JSON_TWIN])
def test_hcl_style_json_twin_gives_the_same_job(name):
    text = _read(name)
    twin = json.dumps(hcl_to_json(parse_hcl(text, name), text))
    assert to_wire(_parse(twin, name)) == to_wire(_parse(text, name))


@pytest.mark.parametrize("name", FILES)
def test_api_json_form_gives_the_same_job(name):
    job = to_wire(_parse(_read(name), name))
    assert to_wire(parse(json.dumps({"Job": job}), name, checks=True)) == job


def test_corpus_uses_every_block_and_attribute():
    all_attrs, all_blocks = schema_edges()
    used_attrs, used_blocks = set(), set()
    for name in FILES:
        attrs, blocks = used_edges(parse_hcl(_read(name), name))
        used_attrs |= attrs
        used_blocks |= blocks
    missing_blocks = sorted(f"{parent} > {block}" for _, parent, block in all_blocks - used_blocks)
    missing_attrs = sorted(f"{schema}.{attr}" for _, schema, attr in all_attrs - used_attrs)
    assert missing_blocks == [] and missing_attrs == []


JSON_TWINS = sorted(os.listdir(os.path.join(CORPUS, "json")))


@pytest.mark.parametrize("name", JSON_TWINS)
def test_checked_in_hcl_json_twins_give_the_hcl_job(name):
    hcl_name = name.replace(".nomad.json", ".nomad.hcl")
    with open(os.path.join(CORPUS, "json", name), encoding="utf-8") as handle:
        twin = handle.read()
    assert to_wire(_parse(twin, hcl_name)) == to_wire(_parse(_read(hcl_name), hcl_name))
