"""Slack payloads within Block Kit limits, and delivery to a real receiver."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.alerting.testing import Receiver, Response
from agent.plugin import PluginContext, Rejected, Retry, Sent
from agent.types import Alert, AlertStatus, Evidence, Severity, TemplateEvidence
from plugins.outputs.slack import SlackConfig, SlackOutput, code_block, slack_payload


def alert(i: int = 1, lines: int = 3, title: str = "Error burst") -> Alert:
    return Alert(
        fingerprint=f"fp{i}", status=AlertStatus.FIRING, severity=Severity.CRITICAL, title=title,
        summary="5x more <ERROR> lines & rising",
        evidence=Evidence([TemplateEvidence(t, f"template {t} <*> " + "x" * 300, 50.0, 2.0) for t in range(15)],
                          [f"2024-01-01 ERROR worker-{n} failed: " + "y" * 120 for n in range(lines)], {"user": "bob"}),
        host="web-1", source="/var/log/app.log", detector="volume", score=9.5, threshold=3.0, first_seen=1.0,
        last_seen=2.0, count=4, id=f"fp{i}-7",
    )


def check_block_kit_limits(payload: dict[str, Any]) -> None:
    """The limits Slack enforces with a 400: what every payload we build must respect."""
    assert payload["text"] and len(payload["text"]) <= 40_000
    blocks = payload["blocks"]
    assert 1 <= len(blocks) <= 50
    for b in blocks:
        if b["type"] == "header":
            assert b["text"]["type"] == "plain_text" and len(b["text"]["text"]) <= 150
        elif b["type"] == "section":
            assert "text" in b or "fields" in b
            if "text" in b:
                assert len(b["text"]["text"]) <= 3000
            for f in b.get("fields", []):
                assert len(f["text"]) <= 2000
            assert len(b.get("fields", [])) <= 10
        elif b["type"] == "context":
            assert 1 <= len(b["elements"]) <= 10
        else:
            assert b["type"] == "divider"


def test_sixty_line_evidence_is_truncated_with_a_marker_within_limits() -> None:
    payload = slack_payload([alert(lines=60)], max_lines=60)
    check_block_kit_limits(payload)
    samples = next(b for b in payload["blocks"] if "Sample lines" in b.get("text", {}).get("text", ""))
    text = samples["text"]["text"]
    assert text.count("worker-") < 60 and "more lines truncated" in text
    shown = text.count("worker-")
    assert f"… {60 - shown} more lines truncated" in text  # the marker counts exactly what was cut
    assert "&lt;ERROR&gt; lines &amp; rising" in str(payload["blocks"])


def test_many_alerts_and_a_long_title_respect_block_and_header_limits() -> None:
    payload = slack_payload([alert(i, lines=60, title="T" * 400) for i in range(20)])
    check_block_kit_limits(payload)
    assert "more alerts in this window not shown" in payload["blocks"][-1]["text"]["text"]
    single = slack_payload([alert(1, title="T" * 400)])
    assert single["blocks"][0]["text"]["text"].endswith("…")


def test_code_block_fits_whole_lines_and_handles_a_huge_single_line() -> None:
    block = code_block(["a" * 10_000], 3000)
    assert len(block) <= 3000 and block.startswith("```\n") and block.endswith("\n```")
    assert code_block(["one", "two"]) == "```\none\ntwo\n```"


def test_delivery_and_rate_limit_answers(tmp_path: Path, receiver: Receiver) -> None:
    ctx = PluginContext(instance="output.slack.0", state_dir=tmp_path, host="h")
    out = SlackOutput(SlackConfig(webhook_url=receiver.url + "/services/T/B/secret"), ctx)
    assert out.min_interval_s == 1.0
    assert isinstance(out.deliver([alert()]), Sent)
    body = receiver.accepted[0].json()
    check_block_kit_limits(body)
    assert body["text"].startswith("[CRITICAL] Error burst")
    answers = iter([Response(429, b"rate_limited", (("Retry-After", "2"),)), Response(400, b"invalid_blocks")])
    receiver.responder = lambda _r: next(answers)
    limited, invalid = out.deliver([alert()]), out.deliver([alert()])
    assert isinstance(limited, Retry) and limited.after_s == 2.0
    assert isinstance(invalid, Rejected) and "invalid_blocks" in invalid.reason
    assert SlackOutput.preflight(SlackConfig(webhook_url="")) != []


def mrkdwn_texts(payload: dict[str, Any]) -> list[str]:
    """Every string Slack parses as mrkdwn: the top-level `text` and the mrkdwn objects of the blocks."""
    found = [payload["text"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(payload["blocks"])
    return found


def test_log_text_cannot_inject_mentions_or_links_and_entities_survive_truncation(
    tmp_path: Path, receiver: Receiver
) -> None:
    hostile = alert(1, title="<!channel> disk <http://evil.example|full> & <@U123>")
    hostile.summary = "&" * 2000 + "<b>"  # escaped it is five times longer than any limit
    hostile.evidence.samples = ["x" * 300 + "&<>" * 400, "\x00\x07 ctl \u202e bidi \U0001f525 é"]
    ctx = PluginContext(instance="output.slack.0", state_dir=tmp_path, host="h")
    out = SlackOutput(SlackConfig(webhook_url=receiver.url + "/services/T/B/secret"), ctx)
    assert isinstance(out.deliver([hostile]), Sent)
    payload = receiver.accepted[0].json()  # what went over the wire, decoded by a real JSON parser
    check_block_kit_limits(payload)
    for text in mrkdwn_texts(payload):
        assert "<" not in text and ">" not in text, text[:200]
        assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", text, re.S), "a cut entity: " + text[-20:]
    assert "&lt;!channel&gt;" in payload["text"]
    assert "\U0001f525 é" in str(payload["blocks"])
