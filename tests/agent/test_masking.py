"""Masking: every variable class is found as one value, literal words are left alone, the shape is stable."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import masking
from agent.masking import VAR, classify, split, tokenize

CASES = [
    ("number", "took 42 tries", "42"),
    ("number", "rank -3 symbol", "-3"),
    ("hex", "at 0x00e462c0 now", "0x00e462c0"),
    ("hex", "iar 001064fc dear", "001064fc"),
    ("ipv4", "from 10.251.73.220 port", "10.251.73.220"),
    ("ipv4", "to /10.251.30.6:33145 done", "/10.251.30.6:33145"),
    ("ipv6", "peer fe80::1ff:fe23:4567:890a up", "fe80::1ff:fe23:4567:890a"),
    ("ipv6", "peer 2001:db8:0:0:0:0:2:1 up", "2001:db8:0:0:0:0:2:1"),
    ("uuid", "req 123e4567-e89b-12d3-a456-426614174000 ok", "123e4567-e89b-12d3-a456-426614174000"),
    ("path", "open /var/log/app/x.log failed", "/var/log/app/x.log"),
    ("url", "GET https://example.com/a?b=1 200", "https://example.com/a?b=1"),
    ("email", "mail to ops@example.com sent", "ops@example.com"),
    ("size", "took 12ms", "12ms"),
    ("size", "wrote 3.5MB", "3.5MB"),
    ("date", "at 2015-10-18 18:01:47,978 start", "2015-10-18 18:01:47,978"),
    ("date", "at 2024-01-02T03:04:05Z start", "2024-01-02T03:04:05Z"),
    ("textdate", "at Sat Jun 18 02:23:10 2005 now", "Sat Jun 18 02:23:10 2005"),
    ("time", "lifetime 18:01:47 ok", "18:01:47"),
    ("mac", "hw 00:1a:2b:3c:4d:5e up", "00:1a:2b:3c:4d:5e"),
    ("id", "block blk_-6952295868487656571 ok", "blk_-6952295868487656571"),
    ("id", "job job_2008_01 ok", "job_2008_01"),
    ("host", "to proxy.example.com:5070 ok", "proxy.example.com"),
]


@pytest.mark.parametrize(("cls", "line", "value"), CASES)
def test_each_class_is_one_value(cls: str, line: str, value: str) -> None:
    parts = split(line)
    assert value in parts[1::2], parts
    assert (cls, value) in classify(line)


@pytest.mark.parametrize("word", ["ssh2", "x86", "jk2_init()", "mod_jk", "HTTPS", "IPv6", "utf8"])
def test_words_with_digits_that_are_names_stay_literal(word: str) -> None:
    assert split(f"use {word} here")[1::2] == []


def test_sub_token_values_keep_their_literal_prefix() -> None:
    parts = split("node node-123 user=bob core.114 port:8080")
    shape = VAR.join(parts[0::2])
    assert shape == f"node node-{VAR} user=bob core.{VAR} port:{VAR}"
    assert parts[1::2] == ["123", "114", "8080"]


def test_tokenize_separates_glue_punctuation_and_keeps_whitespace() -> None:
    tokens, gaps, truncated = tokenize("a=b, (c)  d ", 100)
    assert tokens == ["a", "=", "b", ",", "(", "c", ")", "d"]
    assert "".join(g + t for g, t in zip(gaps, tokens, strict=False)) + gaps[-1] == "a=b, (c)  d "
    assert not truncated


def test_tokenize_caps_tokens_and_keeps_the_rest_as_one_token() -> None:
    line = " ".join(f"w{i}" for i in range(10_000))
    tokens, gaps, truncated = tokenize(line, 50)
    assert truncated and len(tokens) == 50
    assert "".join(g + t for g, t in zip(gaps, tokens, strict=False)) + gaps[-1] == line


@given(st.text(max_size=200))
def test_masking_is_lossless_and_idempotent(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    shape = VAR.join(parts[0::2])
    again = split(shape)
    assert VAR.join(again[0::2]) == shape  # masking a shape finds nothing new to mask


_REFERENCE = re.compile(
    "((?<![A-Za-z0-9])(?:"
    + "|".join(
        f"(?={'[A-Za-z]' if k == 0 else first})(?:" + "|".join(f"(?:{masking._PATTERNS[n]})" for n in names) + ")"
        for k, (first, names) in enumerate(masking._BY_FIRST_CHAR)
    )
    + "))"
)
"""The masks guarded by their first character only: the plain-word look-ahead must not change any value."""


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["a", "Z", "0", "9", ":", "/", ".", "_", "-", "@", " ", "\t", "\\", "ü", ",", "(", "]", "=", "x",
             "Jan ", "Mon, ", "2024-01-02", "0xff", "blk_-1", "C:\\", "http://", "ab:cd:ef:01:23:45", "12ms"]
        ),
        max_size=25,
    )
)
def test_the_plain_word_guard_masks_exactly_like_the_first_character_guard(parts: list[str]) -> None:
    line = "".join(parts)
    assert masking.MASK_RE.split(line) == _REFERENCE.split(line)
