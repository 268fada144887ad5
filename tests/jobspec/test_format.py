"""format_hcl: the canonical layout `yurt fmt` writes (as `nomad fmt` does)."""

import os

import pytest

from yurt.jobspec.hcl_format import format_hcl, normalize_expression
from yurt.jobspec.hcl_syntax import parse_hcl

MESSY = '''  job    "j1"   {
  type          = "service"
  datacenters = [   "dc1"  ,"dc2" ]
  group "g1"   {
    count = 1
    task "t1" {
      driver   = "exec"
      config   {
            command = "/bin/sleep"
      }
      resources {
            cpu    = 1000
          memory = 512
       }
}
}
}
'''
CANONICAL = '''job "j1" {
  type        = "service"
  datacenters = ["dc1", "dc2"]
  group "g1" {
    count = 1
    task "t1" {
      driver = "exec"
      config {
        command = "/bin/sleep"
      }
      resources {
        cpu    = 1000
        memory = 512
      }
    }
  }
}
'''


def test_messy_job_becomes_canonical():
    assert format_hcl(MESSY) == CANONICAL


def test_blank_line_runs_collapse_to_one_and_trailing_space_goes():
    text = 'job "x" {   \n  a = 1\n\n\n\n  b = 2\n}\n\n\n'
    assert format_hcl(text) == 'job "x" {\n  a = 1\n\n  b = 2\n}\n'


@pytest.mark.parametrize("value,expected", [
    ('[ "a" ,"b" ]', '["a", "b"]'), ("{a=1,b=2}", "{ a = 1, b = 2 }"), ("f( 1 ,2 )", "f(1, 2)"),
    ("a==b ? 1:2", "a == b ? 1 : 2"), ('"keep   ${ f("x  y") }  spaces"', '"keep   ${ f("x  y") }  spaces"'),
    ("var.x    # comment", "var.x # comment"), ("{}", "{}"),
    ('[ "if [ ! -f x ]; then ( a ) fi" , "{ }" ]', '["if [ ! -f x ]; then ( a ) fi", "{ }"]'),
])
def test_expression_spacing(value, expected):
    assert normalize_expression(value) == expected


def test_heredoc_bodies_and_block_comments_are_untouched():
    text = 'job "x" {\n  meta {\n    a = <<EOT\n   x  =  1\nEOT\n  }\n  /* keep\n      this */\n}\n'
    assert format_hcl(text) == text


def test_object_attributes_align_inside_braces():
    text = 'job "x" {\n  meta = {\n    a = "1"\n    long_key = "2"\n  }\n}\n'
    assert format_hcl(text) == 'job "x" {\n  meta = {\n    a        = "1"\n    long_key = "2"\n  }\n}\n'


CORPUS = os.path.join(os.path.dirname(__file__), "corpus")
ASSETS = os.path.join(os.path.dirname(__file__), "..", "..", "src", "yurt", "jobspec", "assets")
FILES = [os.path.join(CORPUS, n) for n in sorted(os.listdir(CORPUS)) if n.endswith(".hcl")] + \
        [os.path.join(ASSETS, n) for n in sorted(os.listdir(ASSETS))]


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_corpus_and_init_templates_are_canonical_and_formatting_keeps_the_syntax(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    assert format_hcl(text) == text
    parse_hcl(format_hcl(MESSY), "x")
