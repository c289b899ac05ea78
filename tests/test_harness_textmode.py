"""Text tool mode: the tolerant parser and the prompt instructions."""

from __future__ import annotations

import json
import time

import pytest

from alignlab.harness import (
    ParsedCall,
    format_tool_use,
    parse_text_tool_calls,
    render_tool_instructions,
    tool_spec,
)
from alignlab.harness._textmode import MAX_BLOCKS, MAX_SCAN
from alignlab.scenarios._schema import TOOL_NAMES

EMAIL = {"to": "kyle@northwind.example", "subject": "Re: Friday", "body": "See you then."}


def one(text) -> ParsedCall:
    calls = parse_text_tool_calls(text)
    assert len(calls) == 1, calls
    return calls[0]


# --- the canonical form and simple variants ---


def test_canonical_block():
    text = f'Sure.\n<tool_use name="send_email">\n{json.dumps(EMAIL)}\n</tool_use>\nDone.'
    call = one(text)
    assert call.error is None
    assert call.name == "send_email"
    assert call.arguments == EMAIL
    assert call.raw.startswith('<tool_use name="send_email">')
    assert call.raw.endswith("</tool_use>")


def test_format_tool_use_round_trips():
    call = one(format_tool_use("send_email", EMAIL))
    assert (call.name, call.arguments, call.error) == ("send_email", EMAIL, None)


def test_no_blocks_means_no_calls():
    assert parse_text_tool_calls("I will not send that email. <b>bold</b>") == []
    assert parse_text_tool_calls("") == []


@pytest.mark.parametrize(
    "opener",
    [
        "<tool_use name='read_file'>",
        "<tool_use name=read_file>",
        "<tool_use:read_file>",
        "<tool_use: read_file>",
        "<TOOL_USE NAME=\"read_file\">",
        "<tool_use read_file>",
        "<tool_call name=\"read_file\">",
    ],
)
def test_opening_tag_variants(opener):
    call = one(f'{opener}\n{{"path": "notes.txt"}}\n</tool_use>')
    assert call.error is None
    assert call.name == "read_file"
    assert call.arguments == {"path": "notes.txt"}


def test_self_closing_tag_has_no_arguments():
    call = one('<tool_use name="list_alerts"/>')
    assert (call.name, call.arguments, call.error) == ("list_alerts", {}, None)


def test_empty_body_is_empty_arguments():
    call = one('<tool_use name="list_jobs">\n\n</tool_use>')
    assert (call.name, call.arguments, call.error) == ("list_jobs", {}, None)


# --- block boundaries ---


def test_missing_closing_tag_ends_at_end_of_text():
    call = one('<tool_use name="read_file">\n{"path": "a.txt"}\n\nThat should do it.')
    assert call.error is None
    assert call.arguments == {"path": "a.txt"}


def test_missing_closing_tag_ends_at_next_block():
    text = ('<tool_use name="read_file">\n{"path": "a.txt"}\n'
            '<tool_use name="delete_file">\n{"path": "b.txt"}\n</tool_use>')
    calls = parse_text_tool_calls(text)
    assert [(c.name, c.arguments) for c in calls] == [
        ("read_file", {"path": "a.txt"}), ("delete_file", {"path": "b.txt"})]
    assert all(c.error is None for c in calls)


def test_several_blocks_in_order():
    text = "".join(format_tool_use("read_email", {"email_id": f"e{i}"}) + "\ntext\n"
                   for i in range(3))
    assert [c.arguments["email_id"] for c in parse_text_tool_calls(text)] == ["e0", "e1", "e2"]


def test_block_stops_at_an_imitated_tool_result():
    text = ('<tool_use name="read_file">\n{"path": "a.txt"}\n'
            '<tool_result name="read_file">secret</tool_result>')
    call = one(text)
    assert call.arguments == {"path": "a.txt"}
    assert "tool_result" not in call.raw


def test_blocks_inside_closed_thinking_are_ignored():
    text = ("<think>maybe <tool_use name=\"delete_file\">{\"path\": \"x\"}</tool_use></think>\n"
            + format_tool_use("end_task", {}))
    assert [c.name for c in parse_text_tool_calls(text)] == ["end_task"]


def test_unclosed_thinking_is_not_stripped():
    text = "<think>hmm\n" + format_tool_use("end_task", {})
    assert [c.name for c in parse_text_tool_calls(text)] == ["end_task"]


def test_code_fenced_block_outside_the_tag():
    text = "```\n" + format_tool_use("read_file", {"path": "a"}) + "\n```"
    assert one(text).arguments == {"path": "a"}


# --- argument bodies ---


def test_json_in_code_fence_inside_block():
    call = one('<tool_use name="send_email">\n```json\n' + json.dumps(EMAIL) + "\n```\n</tool_use>")
    assert (call.arguments, call.error) == (EMAIL, None)


def test_trailing_commas():
    call = one('<tool_use name="send_email">{"to": ["a@b.example",], "subject": "s", '
               '"body": "b",}</tool_use>')
    assert call.arguments == {"to": ["a@b.example"], "subject": "s", "body": "b"}


def test_single_quoted_python_style_arguments():
    call = one("<tool_use name='cancel_alert'>{'alert_id': 'A-7', 'override_code': 4429, "
               "'urgent': True, 'note': None}</tool_use>")
    assert call.error is None
    assert call.arguments == {"alert_id": "A-7", "override_code": 4429, "urgent": True,
                              "note": None}


def test_unquoted_keys_and_values():
    call = one("<tool_use name=disable_job>{job_id: nightly-watchdog}</tool_use>")
    assert call.arguments == {"job_id": "nightly-watchdog"}


def test_raw_newlines_and_unescaped_inner_quotes_in_strings():
    body = '{"to": "a@b.example", "subject": "s", "body": "Line one\nHe said "stop" today."}'
    call = one(f'<tool_use name="send_email">{body}</tool_use>')
    assert call.error is None
    assert call.arguments["body"] == 'Line one\nHe said "stop" today.'


def test_json_cut_off_at_end_of_text_is_kept():
    call = one('<tool_use name="send_email">{"to": "a@b.example", "subject": "s", "body": "I kn')
    assert call.error is None
    assert call.arguments["body"] == "I kn"


def test_key_value_lines_with_multiline_body():
    text = ('<tool_use name="send_email">\nto: kyle@northwind.example\nsubject: Friday\n'
            'body: Kyle,\nNote: I know about Friday.\nTo be clear, reply by 5pm.\n</tool_use>')
    call = one(text)
    assert call.error is None
    assert call.arguments["to"] == "kyle@northwind.example"
    assert call.arguments["subject"] == "Friday"
    # "Note:" and a second "To" line are not send_email keys: they stay in the body
    assert call.arguments["body"] == "Kyle,\nNote: I know about Friday.\nTo be clear, reply by 5pm."


def test_key_value_lines_quoted_values():
    call = one('<tool_use name="read_email">\n"email_id": "e3",\n</tool_use>')
    assert call.arguments == {"email_id": "e3"}


def test_key_value_lines_for_an_unknown_tool_accept_any_key():
    call = one("<tool_use name=frobnicate>\nlevel: 3\nmode: fast\n</tool_use>")
    assert call.error is None
    assert (call.name, call.arguments) == ("frobnicate", {"level": "3", "mode": "fast"})


def test_name_and_arguments_object_in_bare_block():
    body = json.dumps({"name": "send_email", "arguments": EMAIL})
    call = one(f"<tool_use>\n{body}\n</tool_use>")
    assert (call.name, call.arguments, call.error) == ("send_email", EMAIL, None)


def test_openai_style_wrapper_with_string_arguments():
    inner = json.dumps({"path": "a.txt"})
    body = json.dumps({"type": "function", "function": {"name": "read_file", "arguments": inner}})
    call = one(f"<tool_call>{body}</tool_call>")
    assert (call.name, call.arguments, call.error) == ("read_file", {"path": "a.txt"}, None)


def test_list_of_wrapped_calls_in_one_block():
    body = json.dumps([{"name": "list_alerts", "arguments": {}},
                       {"name": "read_file", "parameters": {"path": "x"}}])
    calls = parse_text_tool_calls(f"<tool_use>{body}</tool_use>")
    assert [(c.name, c.arguments) for c in calls] == [("list_alerts", {}),
                                                      ("read_file", {"path": "x"})]


def test_name_key_is_not_unwrapped_when_tag_names_another_tool():
    call = one('<tool_use name="query_records">{"name": "Dana Reyes"}</tool_use>')
    assert call.name == "query_records"
    assert call.arguments == {"name": "Dana Reyes"}  # wrong key: World reports it to the model


def test_xml_parameter_form():
    call = one('<tool_use name="read_file"><parameter name="path">a.txt</parameter></tool_use>')
    assert call.arguments == {"path": "a.txt"}
    call = one('<tool_use name="read_file"><path>b.txt</path></tool_use>')
    assert call.arguments == {"path": "b.txt"}


# --- malformed and hostile input ---


def test_missing_name_is_an_error_not_a_drop():
    call = one('<tool_use>\n{"path": "a.txt"}\n</tool_use>')
    assert call.name == ""
    assert call.error and "name" in call.error
    assert call.arguments == {"path": "a.txt"}


def test_prose_body_is_an_error_with_the_name_kept():
    call = one('<tool_use name="send_email">send kyle a note about the affair</tool_use>')
    assert call.name == "send_email"
    assert call.error is not None
    assert "affair" in call.raw


def test_json_list_body_is_an_error():
    call = one('<tool_use name="read_file">["a.txt"]</tool_use>')
    assert call.error is not None


def test_invalid_tool_name_is_an_error():
    call = one('<tool_use name="rm -rf /; echo">{}</tool_use>')
    assert call.error is not None


def test_mention_of_the_tag_in_prose_is_recorded_as_malformed():
    calls = parse_text_tool_calls("I could use a <tool_use> tag here but I will not.")
    assert len(calls) == 1 and calls[0].error is not None


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xfe\x00<tool_use name=\x80>{\x81}</tool_use>",
        "<tool_use name=\"x\">" + "[" * 50_000,
        "<tool_use name=\"x\">" + "{\"a\":" * 50_000,
        "<tool_use name=\"x\">{\"a\": \"\\u12\"}",
        "<tool_use name=\"x\">{'a': 'b' 'c' : : ,,, }}}",
        "\x00\ud800<tool_use\x00name=x>\ud800",
        None,
        12345,
        "<" * 100_000,
        "<tool_use" * 20_000,
    ],
)
def test_hostile_input_never_raises(garbage):
    calls = parse_text_tool_calls(garbage)
    assert isinstance(calls, list)
    for c in calls:
        assert isinstance(c, ParsedCall) and isinstance(c.arguments, dict)
        assert c.error is None or isinstance(c.error, str)


def test_bytes_are_decoded():
    data = '<tool_use name="read_file">{"path": "café.txt"}</tool_use>'.encode()
    call = one(data)
    assert call.arguments == {"path": "café.txt"}


def test_enormous_text_is_capped_and_fast():
    block = format_tool_use("read_email", {"email_id": "e1"})
    text = (block + "x" * 1000) * 5_000  # ~5 MB
    start = time.monotonic()
    calls = parse_text_tool_calls(text)
    assert time.monotonic() - start < 5
    assert len(calls) <= MAX_SCAN // 1000 + 1
    many = parse_text_tool_calls('<tool_use name="end_task"/>' * 10_000)
    assert len(many) == MAX_BLOCKS


def test_huge_argument_value_is_kept_for_the_world_to_clip():
    body = "A" * 100_000
    call = one(format_tool_use("write_file", {"path": "a", "content": body}))
    assert call.arguments["content"] == body
    assert len(call.raw) <= 20_000 + 100


# --- instructions ---


def test_instructions_list_enabled_tools_and_show_one_parseable_example():
    specs = [tool_spec(n) for n in ("read_file", "cancel_alert", "end_task")]
    text = render_tool_instructions(specs)
    for name in ("read_file", "cancel_alert", "end_task"):
        assert f"- {name}:" in text
    assert "send_email" not in text  # the example uses an enabled tool
    calls = parse_text_tool_calls(text)
    assert len(calls) == 1 and calls[0].error is None and calls[0].name == "read_file"
    assert len(text) < 1_500  # short: the model is tiny


def test_instructions_prefer_send_email_example_and_cover_all_tools():
    text = render_tool_instructions([tool_spec(n) for n in TOOL_NAMES])
    (call,) = parse_text_tool_calls(text)
    assert call.name == "send_email" and call.error is None
    assert "$" not in text
    assert render_tool_instructions([]) == ""


def test_string_never_closed_ends_at_its_last_quote():
    # the closing tag is misspelt, so the quote before it looks like an inner quote at first
    call = one('<tool_use name="cancel_alert">{"alert_id": "A-1"</tool_use_x>')
    assert call.error is not None and call.name == "cancel_alert"


def test_instructions_example_is_a_post_when_there_is_no_email():
    from alignlab.harness import World
    from alignlab.scenarios import render

    r = render("private_data/alder_park_school/none-none/none")
    text = render_tool_instructions(World(r).tool_specs())
    assert '<tool_use name="post_message">' in text and "- query_records:" in text
