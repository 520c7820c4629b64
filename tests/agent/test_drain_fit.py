"""Template fits: the directly built regex program is the one `re` compiles from the fit's source."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from agent import drain_fit
from agent.drain import Drain


def test_the_direct_build_is_in_use_on_this_python() -> None:
    assert drain_fit._DIRECT_OK


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="ab:/]=[ (.*\\\u00fc", min_size=1, max_size=6),
            st.sampled_from(["", "7", "12.5", "x9", "0xff"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fits_of_learned_templates_compile_to_res_own_program(parts: list[tuple[str, str]]) -> None:
    d = Drain()
    rng = random.Random(3)
    lines = []
    for _ in range(3):
        line = "".join(text + (value.replace("7", str(rng.randint(0, 99))) if value else "") for text, value in parts)
        lines.append(line)
        d.add(line)
    for c in d._lru.values():
        built = drain_fit.fit_pattern(c.tokens, c.gaps)
        if built is None:
            continue
        ops = built[0]
        for line in lines:
            assert drain_fit.direct_agrees(ops, line), drain_fit.source(ops)
