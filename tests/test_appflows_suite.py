"""Suite files parse strictly: every mistake names the file, the field path and the fix."""

from __future__ import annotations

import textwrap

import pytest

from bot.appflows.suite import all_cases, load_suites, parse_suite, shard_cases
from bot.core.errors import InputError

GOOD = textwrap.dedent("""\
    suite: demo
    defaults:
      system: You are Canopy. Reply only with a JSON object with the keys "answer" and "topic".
      sampling: {temperature: 0, seed: 3, max_tokens: 48}
    cases:
      - id: json-capital
        tags: [output-format]
        messages: [{role: user, content: What is the capital of Italy?}]
        expect:
          - json: true
          - json_schema: {type: object, required: [answer, topic]}
          - contains: Rome
      - id: tool-glossary
        tags: [agent-workflow]
        tools:
          - type: function
            function:
              name: lookup_definition
              parameters: {type: object, properties: {term: {type: string}}, required: [term]}
        messages: [{role: user, content: Look up gravity in the glossary.}]
        expect:
          - tool_call: {name: lookup_definition, arguments: {type: object, required: [term]}}
    """)


def test_parse_suite__reads_cases_defaults_and_system_prompt():
    suite = parse_suite(GOOD, "evals/canopy/demo.yaml")
    assert suite.name == "demo"
    json_case, tool_case = suite.cases
    assert json_case.key == "demo/json-capital"
    assert json_case.messages[0] == {"role": "system", "content": 'You are Canopy. Reply only with a JSON object with the keys "answer" and "topic".'}
    assert json_case.sampling.seed == 3 and json_case.sampling.max_tokens == 48
    assert [a.kind for a in json_case.expect] == ["json", "json_schema", "contains"]
    assert "valid JSON" in json_case.required() and "'Rome'" in json_case.required()
    assert tool_case.tools[0]["function"]["name"] == "lookup_definition"


@pytest.mark.parametrize("bad, field, words", [
    ("cases: []", "cases", "is empty"),
    ("cases: [{id: a, tags: [output-format], messages: [{role: user, content: hi}], expect: [{contians: x}]}]",
     "cases[0].expect[0].contians", "did you mean `contains`"),
    ("cases: [{id: a, tags: [formatting], messages: [{role: user, content: hi}], expect: [{json: true}]}]",
     "cases[0].tags[0]", "not a known tag"),
    ("cases: [{id: a, tags: [edge-case], messages: [{role: user, content: hi}], expect: [{regex: '(unclosed'}]}]",
     "cases[0].expect[0].regex", "not a valid regular expression"),
    ("cases: [{id: a, tags: [edge-case], messages: [{role: user, content: hi}], expect: []}]",
     "cases[0].expect", "always passes"),
    ("cases: [{id: a, tags: [agent-workflow], messages: [{role: user, content: hi}], expect: [{tool_call: {name: search}}]}]",
     "cases[0].expect[0].tool_call.name", "not offered"),
    ("cases: [{id: a, tags: [edge-case], samples: 5, messages: [{role: user, content: hi}], expect: [{json: true}]}]",
     "cases[0].samples", "every sample would be the same"),
    ("cases: [{id: a, tags: [edge-case], messages: [{role: system, content: hi}], expect: [{json: true}]}]",
     "cases[0].messages[0].role", "system prompt"),
    ("cases: [{id: a, tags: [edge-case], messages: [{role: user, content: hi}], expect: [{max_chars: -3}]}]",
     "cases[0].expect[0].max_chars", "whole number"),
    ("cases: [{id: a, tags: [edge-case], messages: [{role: user, content: hi}], expect: [{json_schema: {type: nope}}]}]",
     "cases[0].expect[0].json_schema", "not a valid JSON schema"),
    ("cases:\n- {id: a, tags: [edge-case], messages: [{role: user, content: hi}], expect: [{json: true}]}\n"
     "- {id: a, tags: [edge-case], messages: [{role: user, content: hi}], expect: [{json: true}]}",
     "cases[1].id", "already used"),
    ("cases: [{id: a, tags: [edge-case], messages: [{role: user, content: hi}], expect: [{json: true, contains: x}]}]",
     "cases[0].expect[0]", "exactly one key"),
])
def test_parse_suite__errors_name_file_and_field(bad, field, words):
    with pytest.raises(InputError) as err:
        parse_suite(bad, "evals/canopy/bad.yaml")
    assert err.value.file == "evals/canopy/bad.yaml"
    assert err.value.field == field
    assert words in str(err.value)


def test_parse_suite__malformed_yaml_names_the_line():
    with pytest.raises(InputError) as err:
        parse_suite("cases: [\n  - id: a\n", "evals/x.yaml")
    assert err.value.file == "evals/x.yaml" and "line" in err.value.field


def test_load_suites__reads_the_given_revision_only(gitops):
    gitops.write("evals/canopy/demo.yaml", GOOD)
    base = gitops.commit("Add the suite")
    gitops.write("evals/canopy/demo.yaml", GOOD.replace("contains: Rome", "contains: Anything"))
    gitops.commit("PR weakens the suite")
    from bot.vcs.reader import GitReader

    reader = GitReader(gitops.path)
    try:
        [suite] = load_suites(reader, base, "evals/canopy")
        assert suite.cases[0].expect[2].value == "Rome"
        with pytest.raises(InputError) as err:
            load_suites(reader, base, "evals/nothing-here")
        assert "no suite files" in str(err.value)
        with pytest.raises(InputError):
            load_suites(reader, base, "../outside")
    finally:
        reader.close()


def test_shard_cases__every_case_lands_in_exactly_one_shard():
    suite = parse_suite(GOOD, "a.yaml")
    cases = all_cases([suite]) * 3
    shards = [shard_cases(cases, k, 4) for k in range(4)]
    assert sorted(len(s) for s in shards) == [1, 1, 2, 2]
    assert sum(shards, []) != [] and sorted(map(id, sum(shards, []))) == sorted(map(id, cases))
