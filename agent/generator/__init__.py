"""`logwarden generate`'s engine: a synthetic microservice log with exactly labelled incidents.

Line format (one record per line; stack traces add tab-indented continuation lines)::

    2026-11-28T12:00:00.123Z INFO  api-gateway req=3f2a9c1b7d4e Received GET /api/v1/orders/48213 from 10.4.2.17

i.e. `GENERATOR_FORMAT` = `<Date> <Level> <Component> <Request> <Content>` with the level padded to five
characters, and the session key extractable with `SESSION_KEY_REGEX`.
"""

from agent.generator.engine import (
    DEFAULT_START,
    GENERATOR_FORMAT,
    MULTILINE_START,
    SESSION_KEY_REGEX,
    GeneratorConfig,
    generate,
)
from agent.generator.incidents import INCIDENT_TYPES, IncidentLabel, parse_incidents
from agent.generator.sessions import generate_sessions

__all__ = [
    "DEFAULT_START",
    "GENERATOR_FORMAT",
    "INCIDENT_TYPES",
    "MULTILINE_START",
    "SESSION_KEY_REGEX",
    "GeneratorConfig",
    "IncidentLabel",
    "generate",
    "generate_sessions",
    "parse_incidents",
]
