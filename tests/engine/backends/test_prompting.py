"""Tests for engine.backends.prompting: probing chat templates and writing what they leave out.

Templates: SmolLM2-135M-Instruct's own (plain ChatML, read from its GGUF), handwritten ones (no
tools, no system role, no tool role) and the test models' ChatML+Hermes template, which renders
everything itself. Prompts use the real airline tools; the agent-turn grammar is checked against
the call text the prompt shows, on SmolLM2's own vocabulary.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest

from engine.backends.chat_template import ChatTemplate
from engine.backends.models import resolve_model_alias
from engine.backends.prompting import (
    NO_FORMAT_NOTE,
    TemplateSupport,
    ToolPrompt,
    agent_messages,
    calls_as_text,
    choose_format,
    example_call,
    probe_template,
    render_agent_prompt,
)
from engine.testmodel import CHAT_TEMPLATE
from envs import get_domain
from grammars import ToolCallFormatError, agent_turn_grammar, get_format

pytest.importorskip("llama_cpp", reason="the llamacpp extra is needed: pip install -e '.[llamacpp]'")

HERMES = get_format("hermes")
LLAMA3 = get_format("llama3_json")
TOOLS = get_domain("airline").openai_tools()
SYSTEM = "You are the airline's customer service agent. Follow the policy."

PLAIN_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# No system role, no tool role, user/assistant strictly alternating, starting with the user.
NO_SYSTEM = (
    "{%- for m in messages -%}"
    "{%- if m['role'] not in ['user', 'assistant'] -%}"
    "{{ raise_exception('no ' + m['role'] + ' role here') }}{%- endif -%}"
    "{%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('turns must alternate') }}{%- endif -%}"
    "[{{ m['role'] }}]{{ m['content'] }}[/{{ m['role'] }}]"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}[assistant]{%- endif -%}"
)
# ChatML with a system role that refuses tool messages.
NO_TOOL_ROLE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role') }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

CALL_1 = ("get_user_details", {"user_id": "sara_doe_496"})
CALL_2 = ("get_reservation_details", {"reservation_id": "ZFA04Y"})
RESULT_1 = '{"user_id": "sara_doe_496", "name": {"first_name": "Sara", "last_name": "Doe"}}'
RESULT_2 = '{"reservation_id": "ZFA04Y", "origin": "SFO", "destination": "JFK"}'


def _call(i: int, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def conversation() -> list[dict[str, Any]]:
    """An agent's view as writ's runner builds it: calls carry JSON-text arguments, content ""."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Hi, I am sara_doe_496 and I want to check my trip."},
        {"role": "assistant", "content": "", "tool_calls": [_call(1, *CALL_1)]},
        {"role": "tool", "tool_call_id": "call_1", "name": CALL_1[0], "content": RESULT_1},
        {"role": "assistant", "content": "Thanks Sara. Which reservation?"},
        {"role": "user", "content": "ZFA04Y please."},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [_call(2, *CALL_2)]},
        {"role": "tool", "tool_call_id": "call_2", "name": CALL_2[0], "content": RESULT_2},
    ]


@pytest.fixture(scope="module")
def smollm2() -> dict[str, Any]:
    """SmolLM2-135M-Instruct's chat template and llguidance tokenizer (vocabulary only, no weights)."""
    from engine.backends.llamacpp_native import import_llama_cpp, import_llguidance

    ll = import_llama_cpp()
    llg = import_llguidance()
    params = ll.llama_model_default_params()
    params.vocab_only = True
    ll.llama_backend_init()
    model = ll.llama_model_load_from_file(str(resolve_model_alias("smollm2-135m")).encode(), params)
    assert model, "llama.cpp could not load SmolLM2's vocabulary"
    vocab = ll.llama_model_get_vocab(model)
    eog = [t for t in range(ll.llama_vocab_n_tokens(vocab)) if ll.llama_vocab_is_eog(vocab, t)]
    with warnings.catch_warnings():  # llguidance calls llama_token_get_attr, deprecated in 0.3.36
        warnings.simplefilter("ignore", DeprecationWarning)
        lltok = llg.llamacpp.lltokenizer_from_vocab(vocab, eos_token=eog or None)
    # the model stays loaded: lltok tokenizes through it (a vocabulary-only load is a few MB)
    return {"template": ll.llama_model_chat_template(model, None).decode(), "lltok": lltok, "model": model}


def _template(name: str, smollm2: dict[str, Any]) -> ChatTemplate:
    source = {"native": CHAT_TEMPLATE, "plain": PLAIN_CHATML, "no_system": NO_SYSTEM, "no_tool_role": NO_TOOL_ROLE}
    return ChatTemplate(smollm2["template"] if name == "smollm2" else source[name], eos_token="<|im_end|>")


def _accepts(lltok: Any, lark: str, text: str) -> bool:
    import llguidance

    matcher = llguidance.LLMatcher(lltok, llguidance.LLMatcher.grammar_from_lark(lark), log_level=0)
    assert not matcher.is_error(), matcher.get_error()
    return matcher.consume_tokens(lltok.greedy_tokenize(text)) and matcher.is_accepting()


def _count_word(text: str, word: str) -> int:
    return len(re.findall(rf"(?<![\w]){re.escape(word)}(?![\w])", text))


# -- choosing the format and probing -----------------------------------------------------------


def test_choose_format_never_raises_for_a_missing_format(smollm2: dict[str, Any]) -> None:
    assert choose_format("llama3_json", smollm2["template"]) == (LLAMA3, None)
    assert choose_format(None, CHAT_TEMPLATE) == (HERMES, None)
    assert choose_format(None, smollm2["template"]) == (HERMES, NO_FORMAT_NOTE)
    fmt, note = choose_format(None, None)
    assert fmt is HERMES and note is not None and "no chat template" in note
    with pytest.raises(ToolCallFormatError, match=r"^unknown tool-call format 'xml' \(known: hermes, llama3_json\)$"):
        choose_format("xml", CHAT_TEMPLATE)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("smollm2", TemplateSupport(tools=False, system=True, tool_calls=False, tool_results=True)),
        ("plain", TemplateSupport(tools=False, system=True, tool_calls=False, tool_results=True)),
        ("no_system", TemplateSupport(tools=False, system=False, tool_calls=False, tool_results=False)),
        ("no_tool_role", TemplateSupport(tools=False, system=True, tool_calls=False, tool_results=False)),
        (
            "native",
            TemplateSupport(
                tools=True, system=True, tool_calls=True, tool_results=True, format="hermes", call_format="hermes"
            ),
        ),
    ],
)
def test_probe_finds_what_each_template_renders(name: str, expected: TemplateSupport, smollm2: dict[str, Any]) -> None:
    template = _template(name, smollm2)
    support = probe_template(template)
    assert support == expected
    assert probe_template(ChatTemplate(template.source, eos_token="<|im_end|>")) is support  # cached per source


def test_notes_say_what_writ_writes(smollm2: dict[str, Any]) -> None:
    notes = ToolPrompt.for_model(smollm2["template"]).notes
    assert notes[0] == NO_FORMAT_NOTE
    assert any(n.startswith("the chat template does not render tools; writ writes") for n in notes)
    assert any("does not render assistant tool calls" in n for n in notes)
    assert not any("system role" in n for n in notes)
    assert ToolPrompt.for_model(CHAT_TEMPLATE).notes == []
    gemma_like = ToolPrompt.for_model(NO_SYSTEM, "hermes").notes
    assert "the chat template has no system role; writ moves the system text into the first user turn" in gemma_like
    assert "the chat template does not render tool messages; writ sends tool results as user turns" in gemma_like
    mismatch = ToolPrompt.for_model(CHAT_TEMPLATE, "llama3_json").notes
    assert any("asks for hermes tool calls" in n for n in mismatch)


# -- prompts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt_name"),
    [
        ("smollm2", None),
        ("plain", None),
        ("no_system", "hermes"),
        ("no_tool_role", "hermes"),
        ("native", None),
        ("native", "llama3_json"),
    ],
)
def test_prompt_shows_every_tool_once_past_calls_and_results(
    name: str, fmt_name: str | None, smollm2: dict[str, Any]
) -> None:
    template = _template(name, smollm2)
    tool_prompt = ToolPrompt.for_model(template.source, fmt_name, eos_token=template.eos_token)
    fmt, support = tool_prompt.fmt, tool_prompt.support
    assert support is not None
    prompt = tool_prompt.render(conversation(), TOOLS)

    past = [fmt.render_call(*CALL_1), fmt.render_call(*CALL_2)]
    assert past[0] in prompt
    assert "Let me look.\n" + past[1] in prompt  # content, then the call as the model writes it
    example = fmt.render_call(*example_call(TOOLS))
    writ_lists = not support.native_tools(fmt)
    assert (example in prompt) is writ_lists
    # every tool is listed once: its description once, its name once outside the call texts
    rest = prompt
    for text in [*past, example]:
        rest = rest.replace(text, "")
    for tool in TOOLS:
        fn = tool["function"]
        assert prompt.count(fn["description"]) == 1, fn["name"]
        assert _count_word(rest, fn["name"]) == 1, fn["name"]
    assert prompt.count(SYSTEM) == 1
    for result in (RESULT_1, RESULT_2):
        wrapped = f"<tool_response>\n{result}\n</tool_response>"
        assert (wrapped if not support.tool_results or name == "native" else result) in prompt
    if fmt is LLAMA3:
        assert "<tool_call>" not in prompt  # the template's own (Hermes) syntax is not offered
    # the grammar accepts the call text the prompt shows, on SmolLM2's vocabulary
    lark = agent_turn_grammar(TOOLS, fmt, tag_tokens=False).lark
    for text in [*past, example]:
        assert _accepts(smollm2["lltok"], lark, text), text
    assert fmt.parse(example)[1][0].name == example_call(TOOLS)[0]


def test_native_template_gets_the_conversation_unchanged() -> None:
    template = ChatTemplate(CHAT_TEMPLATE)
    support = probe_template(template)
    messages = conversation()
    assert render_agent_prompt(template, support, HERMES, messages, TOOLS) == template.render(messages, TOOLS)
    assert agent_messages(support, HERMES, messages, TOOLS) == (messages, TOOLS)


def test_template_without_system_role_gets_it_in_the_first_user_turn() -> None:
    template = ChatTemplate(NO_SYSTEM)
    support = probe_template(template)
    with pytest.raises(ValueError, match="no system role here"):
        template.render(conversation(), TOOLS)
    out, tools = agent_messages(support, HERMES, conversation(), TOOLS)
    assert tools is None
    assert [m["role"] for m in out] == ["user", "assistant"] * 3 + ["user"]
    assert out[0]["content"].startswith(SYSTEM + "\n\n# Tools\n")
    assert out[0]["content"].endswith("\n\nHi, I am sara_doe_496 and I want to check my trip.")
    assert out[2]["content"] == f"<tool_response>\n{RESULT_1}\n</tool_response>"
    # a conversation that opens with the agent's greeting gets the system text as its own user turn
    greeting_first = [conversation()[0], {"role": "assistant", "content": "Hello, how can I help?"}]
    greeting_first.append({"role": "user", "content": "Hi."})
    out, _ = agent_messages(support, HERMES, greeting_first, TOOLS)
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    assert out[0]["content"].startswith(SYSTEM)
    prompt = render_agent_prompt(template, support, HERMES, greeting_first, TOOLS)
    assert prompt.startswith("[user]" + SYSTEM) and prompt.endswith("[/assistant][user]Hi.[/user][assistant]")


def test_parallel_calls_and_their_results_are_written_together() -> None:
    template = ChatTemplate(NO_TOOL_ROLE)
    support = probe_template(template)
    messages = [
        {"role": "user", "content": "Both please."},
        {"role": "assistant", "content": "", "tool_calls": [_call(1, *CALL_1), _call(2, *CALL_2)]},
        {"role": "tool", "tool_call_id": "call_1", "name": CALL_1[0], "content": RESULT_1},
        {"role": "tool", "tool_call_id": "call_2", "name": CALL_2[0], "content": RESULT_2},
    ]
    out, _ = agent_messages(support, HERMES, messages, TOOLS)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[2]["content"] == HERMES.render_call(*CALL_1) + "\n" + HERMES.render_call(*CALL_2)
    assert [c.name for c in HERMES.parse(out[2]["content"])[1]] == [CALL_1[0], CALL_2[0]]
    assert out[3] == {
        "role": "user",
        "content": f"<tool_response>\n{RESULT_1}\n</tool_response>\n<tool_response>\n{RESULT_2}\n</tool_response>",
    }
    assert out[0]["content"].startswith("# Tools\n")  # no system message: writ's own system turn
    # a user message right after tool results joins their user turn, so turns still alternate
    out, _ = agent_messages(support, HERMES, [*messages, {"role": "user", "content": "And?"}], TOOLS)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[3]["content"].endswith(f"{RESULT_2}\n</tool_response>\n\nAnd?")
    assert calls_as_text(LLAMA3, "  ", [_call(1, *CALL_1)]) == LLAMA3.render_call(*CALL_1)


def test_requests_without_tools_still_render_on_any_template(smollm2: dict[str, Any]) -> None:
    """The user simulator's requests: no tools, a system message, plain turns."""
    messages = [{"role": "system", "content": "You are a customer."}, {"role": "user", "content": "Hello!"}]
    for name in ("smollm2", "no_system"):
        prompt = ToolPrompt.for_model(_template(name, smollm2).source).render(messages)
        assert "You are a customer." in prompt and "Hello!" in prompt and "# Tools" not in prompt
    assert ToolPrompt.for_model(None).template is None
    with pytest.raises(ValueError, match="the model has no chat template"):
        ToolPrompt.for_model(None).render(messages)
