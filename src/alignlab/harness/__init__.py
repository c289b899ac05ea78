"""The agent harness: simulated tools for one sample and the Inspect solver that runs it.

    World(rendered)                    stateful simulated tools; World.call(name, args, turn)
    parse_text_tool_calls(text)        tolerant parser for <tool_use name="..."> blocks
    render_tool_instructions(specs)    the text-mode tool section of the system prompt
    honeypot_agent(tool_mode, max_turns)   Inspect solver; leaves STORE_* keys in the store
    replay_transcript(rendered, messages, tool_mode)   re-create ToolCallRecords from a log
"""

from alignlab.harness._agent import (
    MAX_CALLS_PER_TURN,
    STORE_TOOL_MODE,
    TEXT_MODE_PROVIDERS,
    TOOL_MODES,
    execute_native_turn,
    execute_text_turn,
    format_tool_result,
    honeypot_agent,
    replay_transcript,
    resolve_tool_mode,
)
from alignlab.harness._records import (
    STORE_CALLS,
    STORE_CUT_TURNS,
    STORE_ERROR,
    STORE_TURNS,
    STORE_USAGE,
    ToolCallRecord,
)
from alignlab.harness._textmode import (
    ParsedCall,
    format_tool_use,
    parse_text_tool_calls,
    render_tool_instructions,
)
from alignlab.harness._tools import TOOL_PARAMS, WORKSPACE, ToolSpec, World, tool_spec

__all__ = [
    "MAX_CALLS_PER_TURN",
    "STORE_CALLS",
    "STORE_CUT_TURNS",
    "STORE_ERROR",
    "STORE_TOOL_MODE",
    "STORE_TURNS",
    "STORE_USAGE",
    "TEXT_MODE_PROVIDERS",
    "TOOL_MODES",
    "TOOL_PARAMS",
    "WORKSPACE",
    "ParsedCall",
    "ToolCallRecord",
    "ToolSpec",
    "World",
    "execute_native_turn",
    "execute_text_turn",
    "format_tool_result",
    "format_tool_use",
    "honeypot_agent",
    "parse_text_tool_calls",
    "render_tool_instructions",
    "replay_transcript",
    "resolve_tool_mode",
    "tool_spec",
]
