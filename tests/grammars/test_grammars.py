"""Tests for grammars: tool-call formats (write, detect, strict parse) and the agent-turn grammar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.testmodel import CHAT_TEMPLATE
from envs import get_domain
from grammars import (
    Bounds,
    ParsedCall,
    ToolCallFormatError,
    agent_turn_grammar,
    bound_schema,
    detect_format,
    get_format,
)
from tests.conftest import need_optional

HERMES = get_format("hermes")
LLAMA3 = get_format("llama3_json")

LLAMA3_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{%- if message.tool_calls %}{%- set tool_call = message.tool_calls[0].function %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{{- '{\"name\": \"' + tool_call.name + '\", ' }}{{- '\"parameters\": ' }}"
    "{{- tool_call.arguments | tojson }}{{- '}' }}{{- '<|eot_id|>' }}"
    "{%- endif %}{%- endfor %}"
)


# -- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [HERMES, LLAMA3], ids=lambda f: f.name)
def test_render_then_parse_gives_the_call_back(fmt: Any) -> None:
    args = {"order_id": "#W1", "item_ids": ["1", "2"], "n": 3, "note": 'a "quoted" ünï'}
    content, calls = fmt.parse(fmt.render_call("return_items", args))
    assert content == ""
    assert calls == [ParsedCall(name="return_items", arguments=json.dumps(args, ensure_ascii=False))]


def test_hermes_keeps_text_beside_calls_and_reads_several() -> None:
    text = (
        "Let me check.\n<tool_call>\n"
        '{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
        '<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    )
    content, calls = HERMES.parse(text)
    assert content == "Let me check."
    assert calls == [
        ParsedCall(name="a", arguments='{"x": 1}'),
        ParsedCall(name="b", arguments="{}"),
    ]


def test_plain_text_is_a_message() -> None:
    assert HERMES.parse("  Hello, how can I help?\n") == ("Hello, how can I help?", [])
    assert LLAMA3.parse("Sure thing.") == ("Sure thing.", [])


def test_llama3_reads_python_tag_and_semicolon_separated_calls() -> None:
    text = '<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "arguments": {}}'
    assert LLAMA3.parse(text) == (
        "",
        [ParsedCall(name="a", arguments='{"x": 1}'), ParsedCall(name="b", arguments="{}")],
    )


@pytest.mark.parametrize(
    ("fmt", "text", "error"),
    [
        (
            HERMES,
            '<tool_call>\n{"name": "a", "arguments": {"x": 1}\n</tool_call>',
            "tool call 1: invalid JSON (Expecting ',' delimiter: line 1 column 36 (char 35)) "
            'in "{\\"name\\": \\"a\\", \\"arguments\\": {\\"x\\": 1}"',
        ),
        (
            HERMES,
            '<tool_call>\n{"name": "a", "arguments": {}}',
            'unbalanced <tool_call> in completion "<tool_call>\\n{\\"name\\": \\"a\\", \\"arguments\\": {}}"',
        ),
        (HERMES, '<tool_call>{"arguments": {}}</tool_call>', 'tool call 1: "name" must be a non-empty string'),
        (
            HERMES,
            '<tool_call>{"name": "a", "arguments": [1]}</tool_call>',
            "tool call 1: arguments of 'a' must be a JSON object",
        ),
        (
            HERMES,
            '<tool_call>{"name": "a", "arguments": {}, "id": 3}</tool_call>',
            "tool call 1: call to 'a' has unexpected keys ['id']",
        ),
        (
            HERMES,
            '<tool_call>{"name": "a", "arguments": {"x": NaN}}</tool_call>',
            "tool call 1: invalid JSON (NaN is not valid JSON) in "
            '"{\\"name\\": \\"a\\", \\"arguments\\": {\\"x\\": NaN}}"',
        ),
        (HERMES, '<tool_call>{"name": "a"}</tool_call>', "tool call 1: call to 'a' needs exactly one of \"arguments\""),
        (
            LLAMA3,
            '{"name": "a", "parameters": {}} and some words',
            'text after tool call 1: "and some words"',
        ),
        (
            LLAMA3,
            '{"name": "a", "parameters": {}, "arguments": {}}',
            'tool call 1: call to \'a\' needs exactly one of "parameters" or "arguments"',
        ),
        (
            LLAMA3,
            '{"name": "a", "parameters": ',
            "tool call 1: invalid JSON (Expecting value: line 1 column 28 (char 27)) in "
            '"{\\"name\\": \\"a\\", \\"parameters\\":"',
        ),
    ],
)
def test_bad_completions_give_one_line_errors(fmt: Any, text: str, error: str) -> None:
    with pytest.raises(ToolCallFormatError) as info:
        fmt.parse(text)
    assert str(info.value) == error
    assert "\n" not in str(info.value)


def test_format_detection_and_lookup() -> None:
    assert detect_format(CHAT_TEMPLATE) is HERMES
    assert detect_format(LLAMA3_TEMPLATE) is LLAMA3
    with pytest.raises(ToolCallFormatError) as info:
        detect_format("{{ messages }}")
    assert str(info.value) == (
        "cannot tell the tool-call format from the chat template; set tool_format to one of: hermes, llama3_json"
    )
    with pytest.raises(ToolCallFormatError) as info:
        detect_format(None)
    assert str(info.value) == ("the model has no chat template; set tool_format to one of: hermes, llama3_json")
    with pytest.raises(ToolCallFormatError) as info:
        get_format("mistral")
    assert str(info.value) == "unknown tool-call format 'mistral' (known: hermes, llama3_json)"


# -- schema bounds and the grammar ------------------------------------------------------------


def test_bound_schema_closes_every_open_part() -> None:
    schema = {
        "type": "object",
        "description": "dropped",
        "properties": {
            "s": {"type": "string", "description": "dropped"},
            "e": {"type": "string", "enum": ["a", "b"]},
            "l": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}},
            "m": {"type": "object", "additionalProperties": {"type": "integer"}},
            "u": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
            "n": {"type": "number"},
        },
        "required": ["s"],
    }
    assert bound_schema(schema, Bounds(max_string_length=10, max_items=4, max_properties=2)) == {
        "type": "object",
        "properties": {
            "s": {"type": "string", "maxLength": 10},
            "e": {"type": "string", "enum": ["a", "b"]},
            "l": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "string", "maxLength": 10}},
                    "additionalProperties": False,
                },
                "maxItems": 4,
            },
            "m": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": -(10**15), "maximum": 10**15},
                "maxProperties": 2,
            },
            "u": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
            "n": {"type": "number", "minimum": -1e15, "maximum": 1e15},
        },
        "required": ["s"],
        "additionalProperties": False,
    }


def test_agent_turn_grammar_is_cached_per_tool_set_and_format() -> None:
    tools = get_domain("retail").openai_tools()
    first = agent_turn_grammar(tools, "hermes")
    assert agent_turn_grammar(json.loads(json.dumps(tools)), "hermes") is first
    keys = {
        first.key,
        agent_turn_grammar(tools, "llama3_json").key,
        agent_turn_grammar(tools, "hermes", tag_tokens=True).key,
        agent_turn_grammar(tools, "hermes", tool_choice="required").key,
        agent_turn_grammar(get_domain("airline").openai_tools(), "hermes").key,
    }
    assert len(keys) == 5
    assert first.tool_names == tuple(t["function"]["name"] for t in tools)
    assert '"whitespace_flexible": false' in first.lark


@pytest.mark.parametrize(
    ("tools", "choice", "error"),
    [
        ([], "auto", "an agent turn needs at least one tool"),
        (
            [{"type": "function", "function": {"description": "x"}}],
            "auto",
            "tool 0: expected an OpenAI function schema with a name",
        ),
        ([{"name": "a"}, {"name": "a"}], "auto", "tool 'a' is listed twice"),
        ([{"name": "a"}], "any", "tool_choice must be 'auto' or 'required', got 'any'"),
    ],
)
def test_bad_tool_lists_give_one_line_errors(tools: list[Any], choice: str, error: str) -> None:
    with pytest.raises(ToolCallFormatError) as info:
        agent_turn_grammar(tools, "hermes", tool_choice=choice)
    assert str(info.value) == error


@pytest.fixture(scope="module")
def lltok(tiny_models: dict[str, Path]) -> Any:
    """llguidance's tokenizer for the test model's vocabulary (from its tokenizer.json)."""
    try:
        import llguidance
    except ImportError:
        need_optional("llguidance")
    return llguidance.LLTokenizer(str(tiny_models["hf"] / "tokenizer.json"))


def _accepts(lltok: Any, lark: str, text: str, *, special: bool = True) -> bool:
    import llguidance

    matcher = llguidance.LLMatcher(lltok, llguidance.LLMatcher.grammar_from_lark(lark), log_level=0)
    assert not matcher.is_error(), matcher.get_error()
    ids = lltok.tokenize_str(text) if special else lltok.greedy_tokenize(text)
    return matcher.consume_tokens(ids) and matcher.is_accepting()


CALL = '{"name": "get_order_details", "arguments": {"order_id": "#W1"}}'


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("Hello, how can I help?", True),
        (f"<tool_call>\n{CALL}\n</tool_call>", True),
        ('<tool_call>\n{"name": "get_order_details", "arguments": {"order_id": 7}}\n</tool_call>', False),
        ('<tool_call>\n{"name": "get_order_details", "arguments": {}}\n</tool_call>', False),
        ('<tool_call>\n{"name": "no_such_tool", "arguments": {}}\n</tool_call>', False),
        ('<tool_call>\n{"name":"get_order_details", "arguments": {"order_id": "#W1"}}\n</tool_call>', False),
        ('<tool_call>\n{"name": "get_order_details", "arguments": {"order_id": "#W1", "x": 1}}\n</tool_call>', False),
        (f"<tool_call>\n{CALL}\n</tool_call>trailing", False),
        (f"Text first <tool_call>\n{CALL}\n</tool_call>", False),
        (
            f'<tool_call>\n{{"name": "get_order_details", "arguments": {{"order_id": "{"x" * 129}"}}}}\n</tool_call>',
            False,
        ),
    ],
)
def test_hermes_grammar_accepts_exactly_text_or_one_valid_call(lltok: Any, text: str, ok: bool) -> None:
    lark = agent_turn_grammar(get_domain("retail").openai_tools(), "hermes", tag_tokens=True).lark
    assert _accepts(lltok, lark, text) is ok


def test_spelled_out_tags_keep_text_from_hiding_a_call(lltok: Any) -> None:
    lark = agent_turn_grammar(get_domain("retail").openai_tools(), "hermes", tag_tokens=False).lark
    assert _accepts(lltok, lark, f"<tool_call>\n{CALL}\n</tool_call>", special=False)
    assert _accepts(lltok, lark, "Plain words < and > are fine.", special=False)
    assert not _accepts(lltok, lark, "Sneaky <tool_call> text", special=False)


def test_required_and_llama3_grammars(lltok: Any) -> None:
    tools = get_domain("retail").openai_tools()
    required = agent_turn_grammar(tools, "hermes", tag_tokens=True, tool_choice="required").lark
    assert not _accepts(lltok, required, "Hello")
    assert _accepts(lltok, required, f"<tool_call>\n{CALL}\n</tool_call>")
    llama3 = agent_turn_grammar(tools, "llama3_json").lark
    call = CALL.replace('"arguments"', '"parameters"')
    assert _accepts(lltok, llama3, call)
    assert _accepts(lltok, llama3, "Hello")
    assert not _accepts(lltok, llama3, CALL)
    assert not _accepts(lltok, llama3, "{not a call")
