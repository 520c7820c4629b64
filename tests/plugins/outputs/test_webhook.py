"""Webhook output against a real receiver: schema, idempotency key, HMAC, redirects, timeouts, preflight."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from pathlib import Path

from structlog.testing import capture_logs

from agent.alerting.payload import SCHEMA_VERSION
from agent.alerting.testing import Receiver, Request, Response, read_request
from agent.clock import ManualClock
from agent.plugin import PluginContext, Rejected, Retry, Sent
from agent.schema import Duration
from agent.types import Alert, AlertStatus, Evidence, Severity
from plugins.outputs.http_common import HttpClientConfig, parse_retry_after
from plugins.outputs.webhook import WebhookConfig, WebhookOutput

SECRET = "s3cr3t-shared-key"


def alert(i: int = 1) -> Alert:
    return Alert(
        fingerprint="abc", status=AlertStatus.FIRING, severity=Severity.WARNING, title="t", summary="s",
        evidence=Evidence(), host="h", source="/l", detector="d", score=2.0, threshold=1.0, first_seen=1.0,
        last_seen=2.0, id=f"abc-{i}",
    )


def hook(tmp_path: Path, url: str, **cfg: object) -> WebhookOutput:
    ctx = PluginContext(instance="output.webhook.0", state_dir=tmp_path, host="h", clock=ManualClock(1_700_000_000))
    return WebhookOutput(WebhookConfig(url=url, **cfg), ctx)  # type: ignore[arg-type]


def verify(req: Request, secret: str, max_age_s: float = 300, now: float = 1_700_000_000) -> bool:
    """What a receiver does: recompute over the raw body, compare in constant time, refuse stale stamps."""
    ts = req.headers.get("x-logwarden-timestamp", "")
    sig = req.headers.get("x-logwarden-signature", "")
    if not ts.isdigit() or abs(now - int(ts)) > max_age_s:
        return False
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


def test_body_is_the_versioned_schema_with_idempotency_key_and_custom_headers(
    tmp_path: Path, receiver: Receiver
) -> None:
    out = hook(tmp_path, receiver.url + "/in", http=HttpClientConfig(headers={"Authorization": "Bearer tok123"}))
    assert isinstance(out.deliver([alert(1), alert(2)]), Sent)
    r1, r2 = receiver.accepted
    assert r1.headers["idempotency-key"] == "abc-1" and r2.headers["idempotency-key"] == "abc-2"
    assert r1.headers["authorization"] == "Bearer tok123" and r1.headers["content-type"] == "application/json"
    doc = r1.json()
    assert doc["schema_version"] == SCHEMA_VERSION and doc["kind"] == "logwarden.alert" and doc["id"] == "abc-1"
    assert "x-logwarden-signature" not in r1.headers


def test_hmac_signature_verifies_with_the_shared_secret_and_not_with_another(
    tmp_path: Path, receiver: Receiver
) -> None:
    assert isinstance(hook(tmp_path, receiver.url, secret=SECRET).deliver([alert()]), Sent)
    (req,) = receiver.accepted
    assert verify(req, SECRET)
    assert not verify(req, "wrong-secret")
    tampered = Request(req.method, req.path, req.headers, req.body.replace(b'"t"', b'"T"'), req.at)
    assert not verify(tampered, SECRET)
    assert not verify(req, SECRET, now=1_700_000_000 + 3600)  # a replay an hour later


def test_receiver_refusing_bad_signatures_makes_a_wrong_secret_fail(tmp_path: Path, receiver: Receiver) -> None:
    receiver.responder = lambda req: Response(200) if verify(req, SECRET) else Response(401, b"bad signature")
    assert isinstance(hook(tmp_path, receiver.url, secret=SECRET).deliver([alert()]), Sent)
    wrong = hook(tmp_path, receiver.url, secret="not-the-secret").deliver([alert()])
    assert isinstance(wrong, Rejected) and "401" in wrong.reason and "bad signature" in wrong.reason


def test_status_classification_and_retry_after(tmp_path: Path, receiver: Receiver) -> None:
    answers = iter([
        Response(503, b"", (("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),)),
        Response(429, b"", (("Retry-After", "7"),)),
        Response(500, b"oops"),
        Response(404, b"no_service"),
    ])
    receiver.responder = lambda _r: next(answers)
    out = hook(tmp_path, receiver.url)
    r503, r429, r500, r404 = (out.deliver([alert()]) for _ in range(4))
    assert isinstance(r503, Retry) and r503.after_s == 0.0  # a date in the past: retry now
    assert isinstance(r429, Retry) and r429.after_s == 7.0
    assert isinstance(r500, Retry) and r500.after_s is None and "oops" in r500.reason
    assert isinstance(r404, Rejected) and "no_service" in r404.reason
    assert parse_retry_after("garbage") is None and parse_retry_after("-3") == 0.0
    assert abs((parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) or 0) - 60.0) < 1e-6


def test_redirects_are_followed_only_within_the_same_origin(tmp_path: Path, receiver: Receiver) -> None:
    with Receiver() as other:
        def answer(req: Request) -> Response:
            if req.path == "/moved":
                return Response(307, b"", (("Location", "/final"),))
            if req.path == "/elsewhere":
                return Response(308, b"", (("Location", other.url + "/steal"),))
            if req.path == "/found":
                return Response(302, b"", (("Location", "/final"),))
            return Response(200)

        receiver.responder = answer
        assert isinstance(hook(tmp_path, receiver.url + "/moved").deliver([alert()]), Sent)
        assert [r.path for r in receiver.accepted] == ["/final"]
        away = hook(tmp_path, receiver.url + "/elsewhere", secret=SECRET).deliver([alert()])
        assert isinstance(away, Rejected) and "another host" in away.reason
        assert other.requests == []  # neither the alert nor its signature left for the other host
        assert isinstance(hook(tmp_path, receiver.url + "/found").deliver([alert()]), Rejected)


def test_slow_receiver_times_out_as_a_retry(tmp_path: Path, receiver: Receiver) -> None:
    release = threading.Event()
    receiver.responder = lambda _r: (release.wait(5), Response(200))[1]
    out = hook(tmp_path, receiver.url, http=HttpClientConfig(timeout=Duration(0.2)))
    result = out.deliver([alert()])
    release.set()
    assert isinstance(result, Retry) and "timed out" in result.reason


def test_secrets_stay_out_of_reasons_and_logs(tmp_path: Path, receiver: Receiver) -> None:
    token = "T000/B000/XXXXsecretpath"
    receiver.down()
    with capture_logs() as logs:
        result = hook(tmp_path, f"{receiver.url}/{token}", secret=SECRET).deliver([alert()])
    assert isinstance(result, Retry) and "ConnectionRefusedError" in result.reason
    assert token not in result.reason and "127.0.0.1" not in result.reason
    assert token not in json.dumps(logs, default=str)
    receiver.up()
    receiver.responder = lambda req: Response(400, ("echo " + req.path).encode())
    rejected = hook(tmp_path, f"{receiver.url}/{token}").deliver([alert()])
    assert isinstance(rejected, Rejected) and token not in rejected.reason and "***" in rejected.reason


def test_preflight() -> None:
    def pf(url: str, secret: str | None = None) -> list[tuple[str, str]]:
        return WebhookOutput.preflight(WebhookConfig(url=url, secret=secret))

    assert pf("https://hooks.example.com/x") == []
    assert pf("http://127.0.0.1:8080/x") == [] and pf("http://localhost/x") == [] and pf("http://[::1]:9/x") == []
    ((key, problem),) = pf("http://hooks.example.com/x")
    assert key == "warning:url" and "not https" in problem and "example.com" not in problem
    assert pf("")[0][0] == "url" and "environment variable" in pf("")[0][1]
    assert pf("ftp://x/y")[0][0] == "url" and pf("https://h:99999/")[0][0] == "url"
    assert pf("https://h/x", secret="") == [("secret", "is empty (is its environment variable set?)")]


def test_a_response_cut_off_mid_body_is_retried_not_dropped(tmp_path: Path) -> None:
    """A receiver going down while it answers (a chunked body cut short) is a transport failure: the alert
    may or may not have arrived, and the idempotency key makes a retry safe."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def answer_and_hang_up() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly-part-of-it")

    t = threading.Thread(target=answer_and_hang_up, daemon=True)
    t.start()
    try:
        out = hook(tmp_path, f"http://127.0.0.1:{server.getsockname()[1]}/hook")
        result = out.deliver([alert()])
    finally:
        t.join(10)
        server.close()
    assert isinstance(result, Retry), result
