"""The ChatML chat template (Jinja) of the test models, with Hermes/Qwen-style tools and tool calls.

Rendering, for a system prompt S, tools T1..Tn and messages:

    <|im_start|>system
    S

    # Tools
    ...
    <tools>
    {T1 as JSON}
    ...
    </tools>
    ...<|im_end|>
    <|im_start|>user
    ...<|im_end|>
    <|im_start|>assistant
    optional text
    <tool_call>
    {"name": "f", "arguments": {...}}
    </tool_call><|im_end|>
    <|im_start|>tool
    <tool_response>
    result text
    </tool_response><|im_end|>
    <|im_start|>assistant

``arguments`` may be a JSON string (copied verbatim) or an object (rendered with ``tojson``).
The generation prompt ``<|im_start|>assistant\\n`` is a prefix of every rendered assistant turn.
Note that ``tojson`` differs between renderers: transformers and llama-cpp-python keep key order
and do not escape; plain Jinja2's default filter sorts keys and escapes ``<>&'``. Render with the
former (or override ``tojson`` the same way) and pass tool-call arguments as JSON strings where
byte-exact prompts matter.
"""

from __future__ import annotations

__all__ = ["CHAT_TEMPLATE"]

_TOOLS_INTRO = (
    "# Tools\\n\\nYou may call one or more of the functions described below, as JSON signatures "
    "inside <tools></tools> tags:\\n<tools>"
)
_TOOLS_OUTRO = (
    "\\n</tools>\\n\\nTo call a function, answer with a JSON object holding its name and its "
    "arguments inside <tool_call></tool_call> tags:\\n<tool_call>\\n"
    '{\\"name\\": <function-name>, \\"arguments\\": <arguments-json-object>}\\n</tool_call>'
)

CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system_text = messages[0]['content'] -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set system_text = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if system_text -%}{{- system_text + '\\n\\n' -}}{%- endif -%}"
    '{{- "' + _TOOLS_INTRO + '" -}}'
    "{%- for tool in tools -%}{{- '\\n' -}}{{- tool | tojson -}}{%- endfor -%}"
    '{{- "' + _TOOLS_OUTRO + '" -}}'
    "{{- '<|im_end|>\\n' -}}"
    "{%- elif system_text -%}"
    "{{- '<|im_start|>system\\n' + system_text + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- set text = message['content'] if message['content'] else '' -%}"
    "{{- '<|im_start|>assistant\\n' + text -}}"
    "{%- if message['tool_calls'] is defined and message['tool_calls'] -%}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- set fn = call['function'] if call['function'] is defined else call -%}"
    "{%- if text or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": \"' + fn['name'] + '\", \"arguments\": ' -}}"
    "{%- if fn['arguments'] is string -%}{{- fn['arguments'] -}}"
    "{%- else -%}{{- fn['arguments'] | tojson -}}{%- endif -%}"
    "{{- '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- elif message['role'] == 'tool' -%}"
    "{{- '<|im_start|>tool\\n<tool_response>\\n' + message['content'] + "
    "'\\n</tool_response><|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
