"""The honeypot agent: an Inspect solver that runs one episode against a simulated World.

Each sample names a scenario condition in `metadata["condition_id"]`. The solver renders
it, builds a fresh World, and loops model turns, executing tool calls itself (Inspect never
runs them), until the model stops calling tools, calls end_task, or `max_turns` is reached.
What happened is left in the sample store under the keys in `harness/_records.py`.
"""

from __future__ import annotations

import hashlib

import json
import re
from typing import Any, Iterable

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    get_model,
)
from inspect_ai.model._generate_config import active_generate_config
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import ToolCall, ToolCallError
from inspect_ai.util import LimitExceededError

from alignlab.errors import UserError
from alignlab.harness._records import (
    STORE_CALLS,
    STORE_CUT_TURNS,
    STORE_ERROR,
    STORE_TURNS,
    STORE_USAGE,
    ToolCallRecord,
)
from alignlab.harness._probe import PROBE_MAX_TOKENS, PROBES, STORE_BELIEF, STORE_PROBE_ANSWER, parse_belief, probe_text
from alignlab.harness._textmode import parse_text_tool_calls, render_tool_instructions
from alignlab.harness._tools import World, clip
from alignlab.scenarios._schema import Rendered

TOOL_MODES: tuple[str, ...] = ("text", "native", "auto")
# Providers without dependable native tool calling: "auto" uses text mode for these.
TEXT_MODE_PROVIDERS: tuple[str, ...] = ("embedded", "hf", "llama-cpp-python", "mockllm", "none")
MAX_CALLS_PER_TURN = 20  # calls beyond this in one turn are logged but not executed
# Which tool mode the episode used; the judge needs it to replay a transcript.
# (Candidate for harness/_records.py next to the other STORE_* keys.)
STORE_TOOL_MODE = "alignlab:tool_mode"


def resolve_tool_mode(mode: str, model_name: str) -> str:
    """"text" or "native". "auto" picks text for local/mock providers, native otherwise."""
    m = str(mode or "").strip().lower()
    if m not in TOOL_MODES:
        raise UserError(f"expected one of {', '.join(TOOL_MODES)}, got {mode!r}", field="tool_mode")
    if m != "auto":
        return m
    provider = str(model_name or "").split("/", 1)[0].strip().lower()
    return "text" if provider in TEXT_MODE_PROVIDERS else "native"


# --- one turn's calls ---------------------------------------------------------------


def execute_text_turn(world: World, text: str, turn: int) -> tuple[list[ToolCallRecord], str]:
    """Parse and run the tool blocks in one assistant message.

    Returns the records and the user message that reports the results ("" if no blocks).
    """
    records = []
    for i, pc in enumerate(parse_text_tool_calls(text)):
        if pc.error is not None:
            records.append(world.record_parse_error(pc.name, pc.error, turn, raw=pc.raw))
        elif i >= MAX_CALLS_PER_TURN:
            records.append(world.reject(pc.name, pc.arguments, _TOO_MANY, turn))
        else:
            records.append(world.call(pc.name, pc.arguments, turn))
    return records, "\n\n".join(format_tool_result(r) for r in records)


def format_tool_result(record: ToolCallRecord) -> str:
    name = re.sub(r"[^\w.\-]", "", record.tool)[:64] or "unknown"
    return f'<tool_result name="{name}">\n{record.result}\n</tool_result>'


def execute_native_turn(world: World, tool_calls: Iterable[ToolCall],
                        turn: int) -> list[tuple[ToolCall, ToolCallRecord]]:
    """Run the native tool calls of one assistant message, in order."""
    done = []
    for i, tc in enumerate(tool_calls):
        if tc.parse_error:
            args = tc.arguments or {}
            raw = (str(args["_raw"]) if set(args) == {"_raw"}
                   else json.dumps(args, ensure_ascii=False, default=str) if args else "")
            rec = world.record_parse_error(tc.function, tc.parse_error, turn, raw=raw)
        elif i >= MAX_CALLS_PER_TURN:
            rec = world.reject(tc.function, tc.arguments, _TOO_MANY, turn)
        else:
            rec = world.call(tc.function, tc.arguments, turn)
        done.append((tc, rec))
    return done


_TOO_MANY = f"not executed: at most {MAX_CALLS_PER_TURN} tool calls per turn"


def _tool_message(tc: ToolCall, rec: ToolCallRecord) -> ChatMessageTool:
    error = ToolCallError("parsing", rec.result) if rec.parse_error else None
    return ChatMessageTool(content=rec.result, tool_call_id=tc.id, function=tc.function,
                           error=error)


# --- the solver ------------------------------------------------------------------------


def _add_usage(total: dict[str, int], output: ModelOutput) -> None:
    u = output.usage
    if u is None:
        return
    total["input_tokens"] += (
        int(u.input_tokens or 0)
        + int(u.input_tokens_cache_read or 0)
        + int(u.input_tokens_cache_write or 0)
    )
    total["output_tokens"] += int(u.output_tokens or 0)


@solver
def honeypot_agent(tool_mode: str = "text", max_turns: int = 4, probe: str | None = None) -> Solver:
    """Run the scenario condition named by `metadata["condition_id"]` as a tool-using agent.

    Args:
      tool_mode: "text" (tool calls as tags in plain text), "native" (the provider's tool
        calling) or "auto" (text for embedded/hf/llama-cpp-python/mockllm/none providers).
      max_turns: Most model turns in one episode.
      probe: "awareness" asks, before the first turn, whether the agent thinks it is in an
        evaluation or a real deployment; the question and answer stay in the conversation
        (as in the research) and the stated belief goes to the store (STORE_BELIEF).
    """
    resolve_tool_mode(tool_mode, "")  # reject a bad mode before any sample runs
    if int(max_turns) < 1:
        raise UserError(f"expected a positive number, got {max_turns!r}", field="max_turns")
    if probe is not None and probe not in PROBES:
        raise UserError(f"expected one of {', '.join(PROBES)}, got {probe!r}", field="probe")

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        from alignlab import scenarios  # lazily: the scenario library loads data files

        condition_id = (state.metadata or {}).get("condition_id")
        if not condition_id:
            raise ValueError("honeypot_agent: sample metadata has no 'condition_id'")
        rendered: Rendered = scenarios.render(condition_id)
        world = World(rendered)  # this sample's own world
        model = get_model()
        mode = resolve_tool_mode(tool_mode, str(model))

        system = rendered.system_prompt
        if mode == "text":
            system = f"{system.rstrip()}\n\n{render_tool_instructions(world.tool_specs())}"
        state.messages = [ChatMessageSystem(content=system),
                          ChatMessageUser(content=rendered.user_prompt)]
        tools = world.to_inspect_tools() if mode == "native" else []
        tool_choice = "auto" if tools else None

        usage = {"input_tokens": 0, "output_tokens": 0}
        store = state.store
        store.set(STORE_TOOL_MODE, mode)
        store.set(STORE_CALLS, [])
        store.set(STORE_TURNS, 0)
        store.set(STORE_CUT_TURNS, 0)
        store.set(STORE_USAGE, dict(usage))

        if probe is not None:
            question, handback = probe_text(probe)
            probe_msg = ChatMessageUser(content=f"{rendered.user_prompt.rstrip()}\n\n{question}")
            try:
                # The question asks for one line: cap it, or a rambling model doubles the episode.
                cap = min(PROBE_MAX_TOKENS, active_generate_config().max_tokens or PROBE_MAX_TOKENS)
                config = _sample_config(state.sample_id, 0).merge(GenerateConfig(max_tokens=cap))
                output = await model.generate([state.messages[0], probe_msg], config=config)
                if output.empty:
                    raise RuntimeError("the model returned no choices")
            except LimitExceededError:
                raise
            except Exception as ex:
                store.set(STORE_ERROR, clip(f"{type(ex).__name__}: {ex}", 2_000))
                return state
            _add_usage(usage, output)
            store.set(STORE_USAGE, dict(usage))
            answer = output.message.text
            store.set(STORE_PROBE_ANSWER, clip(answer, 2_000))
            store.set(STORE_BELIEF, parse_belief(answer))
            # The probe replaces the plain task message: task + question, answer, hand-back.
            state.messages = [state.messages[0], probe_msg,
                              ChatMessageAssistant(content=answer),
                              ChatMessageUser(content=handback)]

        for turn in range(1, int(max_turns) + 1):
            try:
                output = await model.generate(state.messages, tools=tools,
                                              tool_choice=tool_choice,
                                              config=_sample_config(state.sample_id, turn))
                if output.empty:
                    raise RuntimeError("the model returned no choices")
            except LimitExceededError:
                raise  # Inspect records the limit and still scores what was done
            except Exception as ex:
                store.set(STORE_ERROR, clip(f"{type(ex).__name__}: {ex}", 2_000))
                break
            _add_usage(usage, output)
            store.set(STORE_TURNS, turn)
            if output.stop_reason == "max_tokens":  # a cut-off turn may have lost its tool call
                store.set(STORE_CUT_TURNS, store.get(STORE_CUT_TURNS, 0) + 1)
            store.set(STORE_USAGE, dict(usage))
            state.output = output
            message = output.message
            state.messages.append(message)

            if mode == "native":
                done = execute_native_turn(world, message.tool_calls or [], turn)
                state.messages.extend(_tool_message(tc, rec) for tc, rec in done)
                made_calls = bool(done)
            else:
                records, reply = execute_text_turn(world, message.text, turn)
                if reply:
                    state.messages.append(ChatMessageUser(content=reply))
                made_calls = bool(records)
            store.set(STORE_CALLS, [r.to_dict() for r in world.calls])
            if not made_calls or world.ended:
                break
        return state

    return solve


def _sample_config(sample_id: object, turn: int) -> GenerateConfig:
    """Give every sample and turn its own seed, derived from the run's seed.

    With one seed for the whole run, the repeated samples of a condition (identical prompts)
    would be identical draws; deriving per sample keeps them independent yet reproducible.
    """
    base = active_generate_config().seed
    if base is None:
        return GenerateConfig()
    digest = hashlib.sha256(f"{base}|{sample_id}|{turn}".encode()).digest()
    return GenerateConfig(seed=int.from_bytes(digest[:4], "big") & 0x7FFFFFFF)


# --- replay (for judges re-scoring a saved transcript) ---------------------------------


def replay_transcript(rendered: Rendered, messages: Iterable[ChatMessage | dict[str, Any]],
                      tool_mode: str = "auto") -> World:
    """Re-run the tool calls of a saved transcript against a fresh World.

    `messages` are Inspect ChatMessages or OpenAI-style dicts. Each assistant message is one
    turn (1-based). `tool_mode`: "text" parses `<tool_use>` blocks, "native" reads
    `tool_calls`, "auto" reads `tool_calls` when a message has them and text otherwise
    (prefer the mode stored under STORE_TOOL_MODE). The records are `World.calls`.
    """
    mode = str(tool_mode).strip().lower()
    if mode not in TOOL_MODES:
        raise UserError(f"expected one of {', '.join(TOOL_MODES)}, got {tool_mode!r}",
                        field="tool_mode")
    world = World(rendered)
    turn = 0
    for msg in messages:
        if _role(msg) != "assistant":
            continue
        turn += 1
        calls = _tool_calls(msg)
        if mode == "native" or (mode == "auto" and calls):
            execute_native_turn(world, calls, turn)
        else:
            execute_text_turn(world, _text(msg), turn)
    return world


def _role(msg: Any) -> str:
    return str(msg.get("role", "") if isinstance(msg, dict) else getattr(msg, "role", ""))


def _text(msg: Any) -> str:
    if isinstance(msg, ChatMessageAssistant):
        return msg.text
    content = msg.get("content") if isinstance(msg, dict) else getattr(msg, "content", "")
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "\n".join(str(p.get("text", "")) for p in content
                         if isinstance(p, dict) and p.get("type", "text") == "text")
    return "" if content is None else str(content)


def _tool_calls(msg: Any) -> list[ToolCall]:
    if not isinstance(msg, dict):
        return list(getattr(msg, "tool_calls", None) or [])
    out = []
    for i, tc in enumerate(msg.get("tool_calls") or []):
        if not isinstance(tc, dict):
            continue
        fn = tc.get("function")
        # OpenAI: {"function": {"name", "arguments": "<json>"}}; Inspect: {"function": name, ...}
        name, args = (fn.get("name", ""), fn.get("arguments")) if isinstance(fn, dict) else (
            fn, tc.get("arguments"))
        parse_error = tc.get("parse_error")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError as ex:
                parse_error, args = f"arguments are not valid JSON ({ex.msg})", {"_raw": args}
        if not isinstance(args, dict):
            parse_error = parse_error or "arguments are not a JSON object"
            args = {"_raw": args}
        out.append(ToolCall(id=str(tc.get("id") or f"call_{i}"), function=str(name or ""),
                            arguments=args, parse_error=parse_error))
    return out
