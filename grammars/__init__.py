"""Tool-call grammars: tool-call formats and the agent-turn constraint built from tool schemas."""

from grammars.agent_turn import AgentTurnGrammar, Bounds, agent_turn_grammar, bound_schema
from grammars.formats import (
    FORMATS,
    HermesFormat,
    Llama3JsonFormat,
    ParsedCall,
    ToolCallFormat,
    ToolCallFormatError,
    detect_format,
    get_format,
)

__all__ = [
    "FORMATS",
    "AgentTurnGrammar",
    "Bounds",
    "HermesFormat",
    "Llama3JsonFormat",
    "ParsedCall",
    "ToolCallFormat",
    "ToolCallFormatError",
    "agent_turn_grammar",
    "bound_schema",
    "detect_format",
    "get_format",
]
