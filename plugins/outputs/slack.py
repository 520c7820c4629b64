"""Slack output: posts alerts to an incoming webhook as Block Kit messages with a plain `text` fallback.

Slack refuses a whole message (HTTP 400) when one block breaks a limit, so the limits are enforced here,
truncating with a visible marker instead of losing the alert: at most 50 blocks, 3000 characters per
section text, 10 fields of 2000, 150 characters of header. Alerts of one window arrive together (the
router groups them) and become one message. Slack allows about one message per second per webhook; the
router paces this output by `min_interval_s` so bursts queue in the spool instead of drawing 429s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.alerting.payload import rfc3339
from agent.plugin import Delivery, PluginContext
from agent.schema import Duration, opt
from agent.types import Alert, AlertStatus, Record, Severity
from plugins.outputs.http_common import HttpClient, HttpClientConfig, check_url

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_TEXT = 3000
TRUNCATED = "…"

_EMOJI = {Severity.INFO: ":information_source:", Severity.WARNING: ":warning:", Severity.CRITICAL: ":rotating_light:"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackConfig:
    webhook_url: str = opt(doc="Incoming-webhook URL, usually ${SLACK_WEBHOOK_URL}.", secret=True)
    min_interval: Duration = opt(Duration(1.0), doc="Least time between two messages to this webhook.")
    max_evidence_lines: int = opt(20, ge=1, le=200, doc="Sample lines shown per alert before truncation.")
    http: HttpClientConfig = opt(HttpClientConfig(), doc="HTTP client settings: timeout, TLS, headers, proxy.")


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters, also inside code blocks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def clip_mrkdwn(text: str, limit: int) -> str:
    """`clip` for escaped text: a cut through `&amp;` would leave a stray `&am` for Slack to show."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(TRUNCATED)]
    amp = cut.rfind("&", max(0, len(cut) - 4))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + TRUNCATED


def code_block(lines: Sequence[str], limit: int = MAX_SECTION) -> str:
    """A ``` block of whole lines within `limit` characters, ending with a marker naming what was cut."""
    fence_len = len("```\n") + len("\n```")
    kept: list[str] = []
    used = fence_len
    for i, raw in enumerate(lines):
        line = clip_mrkdwn(escape(raw), 500)
        rest = len(lines) - i - 1
        marker = f"… {rest} more lines truncated" if rest else ""
        need = len(line) + 1 + (len(marker) + 1 if marker else 0)
        if used + need > limit:
            kept.append(f"… {len(lines) - i} more lines truncated")
            break
        kept.append(line)
        used += len(line) + 1
    return "```\n" + "\n".join(kept) + "\n```"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip_mrkdwn(text, MAX_SECTION)}}


def _alert_blocks(alert: Alert, max_lines: int, *, with_title: bool) -> list[dict[str, Any]]:
    state = "RESOLVED" if alert.status is AlertStatus.RESOLVED else alert.severity.value.upper()
    head = f"*{escape(alert.title)}*\n" if with_title else ""
    blocks: list[dict[str, Any]] = [_section(head + escape(alert.summary) if (head or alert.summary) else state)]
    fields = [
        ("Status", state),
        ("Detector", alert.detector),
        ("Host", alert.host),
        ("Source", alert.source or "-"),
        ("Score", f"{alert.score:.3g} (threshold {alert.threshold:.3g})"),
        ("Count", str(alert.count)),
        ("First seen", rfc3339(alert.first_seen)),
        ("Last seen", rfc3339(alert.last_seen)),
    ]
    blocks.append({
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip_mrkdwn(f"*{k}*\n{escape(v)}", MAX_FIELD)} for k, v in fields][:MAX_FIELDS],
    })
    ev = alert.evidence
    if ev.templates:
        rows = [f"{t.observed:g}x (normally {t.expected:g})  {t.template}" for t in ev.templates]
        blocks.append(_section("*Templates*\n" + code_block(rows, MAX_SECTION - 20)))
    if ev.samples:
        samples = list(ev.samples)
        cut = len(samples) - max_lines
        shown = samples[:max_lines] + ([f"… {cut} more lines not shown"] if cut > 0 else [])
        blocks.append(_section("*Sample lines*\n" + code_block(shown, MAX_SECTION - 20)))
    if ev.params:
        params = ", ".join(f"{k}={v}" for k, v in ev.params.items())
        blocks.append(_section("*Parameters* " + escape(params)))
    blocks.append({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip_mrkdwn(escape(f"fingerprint `{alert.fingerprint}` · id `{alert.id}`"), MAX_SECTION)}],
    })
    return blocks


def slack_payload(alerts: Sequence[Alert], max_lines: int = 20) -> dict[str, Any]:
    """The webhook body for one group of alerts, within every Block Kit limit."""
    worst = max(alerts, key=lambda a: (a.status is AlertStatus.FIRING, a.severity.rank))
    state = "RESOLVED" if worst.status is AlertStatus.RESOLVED else worst.severity.value.upper()
    emoji = ":white_check_mark:" if worst.status is AlertStatus.RESOLVED else _EMOJI[worst.severity]
    title = f"[{state}] {worst.title}" if len(alerts) == 1 else f"[{state}] {len(alerts)} alerts on {worst.host}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(f"{emoji} {title}", MAX_HEADER), "emoji": True}}
    ]
    shown = 0
    for alert in alerts:
        part = _alert_blocks(alert, max_lines, with_title=len(alerts) > 1)
        divider = [{"type": "divider"}] if shown else []
        if len(blocks) + len(divider) + len(part) > MAX_BLOCKS - 1:  # keep room for the marker
            break
        blocks.extend(divider + part)
        shown += 1
    if shown < len(alerts):
        blocks.append(_section(f"… {len(alerts) - shown} more alerts in this window not shown"))
    # The fallback `text` is mrkdwn too (it is what notifications and some clients show): unescaped, a log
    # line's `<!channel>` would page a whole channel and `<http://x|y>` would render as a link.
    lines = [
        f"[{'RESOLVED' if a.status is AlertStatus.RESOLVED else a.severity.value.upper()}] "
        f"{escape(a.title)}: {escape(a.summary)}"
        for a in alerts
    ]
    return {"text": clip_mrkdwn("\n".join(lines), MAX_TEXT), "blocks": blocks}


class SlackOutput:
    name: ClassVar[str] = "slack"
    config_class: ClassVar[type[SlackConfig]] = SlackConfig
    supports_resolve: ClassVar[bool] = False
    group_by_window: ClassVar[bool] = True
    max_batch: ClassVar[int] = 6

    def __init__(self, config: SlackConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self.min_interval_s = config.min_interval.seconds
        self.client = HttpClient(config.http, secrets=[config.webhook_url])

    @staticmethod
    def preflight(config: SlackConfig) -> list[tuple[str, str]]:
        return check_url("webhook_url", config.webhook_url)

    def start(self) -> None:
        pass

    def deliver(self, alerts: Sequence[Alert]) -> Delivery:
        body = json.dumps(slack_payload(alerts, self.config.max_evidence_lines), ensure_ascii=False).encode("utf-8")
        key = alerts[0].id if len(alerts) == 1 else "+".join(a.id for a in alerts)[:200]
        return self.client.post(
            self.config.webhook_url, body, {"Content-Type": "application/json", "Idempotency-Key": key}
        )

    def write_records(self, records: Sequence[Record]) -> None:
        raise NotImplementedError("the slack output takes `stream: alerts` only")

    def stop(self) -> None:
        self.client.close()
