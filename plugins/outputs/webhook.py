"""Webhook output: one JSON POST per alert, in the versioned logwarden alert schema, optionally signed.

Body: exactly `agent.alerting.payload.alert_to_dict(alert)` (schema_version 1, documented in that
module): `id`, `fingerprint`, `status` (firing|resolved), `severity`, `title`, `summary`, `host`,
`source`, `detector`, `score`, `threshold`, `first_seen`, `last_seen` (RFC 3339), `count`, `labels`,
`evidence` {templates[], samples[], params{}}. New fields may be added within a version; consumers
must ignore unknown keys.

Headers on every request:
- `Content-Type: application/json`
- `Idempotency-Key: <alert id>`: equal across retries and daemon restarts, so a receiver that stores the
  keys it has seen drops the duplicates that at-least-once delivery produces.
- `X-Logwarden-Schema: 1`
- With `secret` set (the GitHub/Stripe convention): `X-Logwarden-Timestamp: <unix seconds>` and
  `X-Logwarden-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`. A receiver recomputes
  the HMAC over the raw body, compares in constant time and rejects stale timestamps (replays).

One request per alert keeps the idempotency key per request, and the router hands this output one alert
per call (`max_batch = 1`) so each is acknowledged on its own: with batches, a receiver failing one request
in N would fail every batch of N and nothing would get through.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import structlog

from agent.alerting.payload import SCHEMA_VERSION, alert_to_dict
from agent.plugin import Delivery, PluginContext, Sent
from agent.schema import opt
from agent.types import Alert, Record
from plugins.outputs.http_common import HttpClient, HttpClientConfig, check_url, secret_problem

log = structlog.get_logger("logwarden.output.webhook")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    url: str = opt(doc="Receiver URL, usually ${WEBHOOK_URL}; https unless the receiver is on loopback.", secret=True)
    secret: str | None = opt(
        None, doc="Key of the HMAC-SHA256 signature header, usually ${WEBHOOK_SECRET}; no signature when unset.",
        secret=True,
    )
    signature_header: str = opt("X-Logwarden-Signature", doc="Header carrying `sha256=<hex digest>`.")
    timestamp_header: str = opt("X-Logwarden-Timestamp", doc="Header carrying the signed Unix timestamp.")
    http: HttpClientConfig = opt(HttpClientConfig(), doc="HTTP client settings: timeout, TLS, headers, proxy.")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookOutput:
    name: ClassVar[str] = "webhook"
    config_class: ClassVar[type[WebhookConfig]] = WebhookConfig
    supports_resolve: ClassVar[bool] = True
    max_batch: ClassVar[int] = 1

    def __init__(self, config: WebhookConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        secrets = [config.url] + ([config.secret] if config.secret else [])
        self.client = HttpClient(config.http, secrets=secrets)

    @staticmethod
    def preflight(config: WebhookConfig) -> list[tuple[str, str]]:
        return check_url("url", config.url) + secret_problem("secret", config.secret)

    def start(self) -> None:
        pass

    def deliver(self, alerts: Sequence[Alert]) -> Delivery:
        for alert in alerts:
            body = json.dumps(alert_to_dict(alert), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": alert.id,
                "X-Logwarden-Schema": str(SCHEMA_VERSION),
            }
            if self.config.secret:
                ts = str(int(self.ctx.clock.time()))
                headers[self.config.timestamp_header] = ts
                headers[self.config.signature_header] = sign(self.config.secret, ts, body)
            result = self.client.post(self.config.url, body, headers)
            if not isinstance(result, Sent):
                return result
        return Sent()

    def write_records(self, records: Sequence[Record]) -> None:
        raise NotImplementedError("the webhook output takes `stream: alerts` only")

    def stop(self) -> None:
        self.client.close()
