"""A bad /etc/instruments.toml must end as one InstrumentError (a ValueError), never anything
else, whatever the text: the kernel then reports it and boots on the defaults."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradekernel.kernel.trading.instruments import (
    DEFAULT_INSTRUMENTS_TOML,
    MAX_CONFIG_BYTES,
    InstrumentError,
    InstrumentTable,
)


def table(body: str) -> str:
    return f"[instruments.X]\n{body}\n"


BAD = {
    "deep arrays": table("tick_size = " + "[" * 5000 + "]" * 5000),
    "deep inline tables": table("tick_size = " + "{a = " * 3000 + "1" + "}" * 3000),
    "deep table headers": "[instruments." + ".".join(["a"] * 3000) + "]\n",
    "huge tick": table("tick_size = 1e999999\nprice_band = [1, 2]"),
    "huge band": table("tick_size = 0.01\nprice_band = [1, 1e100]"),
    "huge int band": table("tick_size = 1\nprice_band = [1, " + "9" * 4000 + "]"),
    "over-long int": table("tick_size = " + "9" * 5000 + "\nprice_band = [1, 2]"),
    "tiny tick": table("tick_size = 1e-999999\nprice_band = [1, 2]"),
    "huge lot": table("tick_size = 0.01\nlot_size = 1e60\nprice_band = [1, 2]"),
    "huge multiplier": table("tick_size = 0.01\nmultiplier = 1e300\nprice_band = [1, 2]"),
    "band of tables": table("tick_size = 0.01\nprice_band = [{a=1}, [2]]"),
    "bool tick": table("tick_size = true\nprice_band = [1, 2]"),
    "date tick": table("tick_size = 1979-05-27\nprice_band = [1, 2]"),
    "nan tick": table("tick_size = nan\nprice_band = [1, 2]"),
    "inf band": table("tick_size = 1\nprice_band = [1, inf]"),
    "too big": "#" * (MAX_CONFIG_BYTES + 1),
    "too many": "".join(
        f"[instruments.S{i}]\ntick_size = 1\nprice_band = [1, 2]\n" for i in range(2000)
    ),
    "not toml": "\x00\xff[[[",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_is_one_clear_error(name):
    with pytest.raises(InstrumentError) as info:
        InstrumentTable.from_toml(BAD[name])
    message = str(info.value)
    assert message.startswith("instruments")
    assert "\n" not in message and len(message) < 300


def test_huge_band_message_says_what_and_where():
    with pytest.raises(InstrumentError, match=r"instruments\.X.*price_band.*1e100|1E\+100"):
        InstrumentTable.from_toml(BAD["huge band"])


def test_realistic_configs_still_load():
    assert len(InstrumentTable.from_toml(DEFAULT_INSTRUMENTS_TOML)) == 4
    btc = InstrumentTable.from_toml(
        table("tick_size = 0.00000001\nlot_size = 0.00000001\nprice_band = [0.01, 10000000]")
    )["X"]
    assert btc.band_high_ticks == 10**15


# ---- fuzz: random TOML documents and random mutations of a good one --------------------------

_NUMBERS = st.one_of(
    st.integers(min_value=-(10**80), max_value=10**80).map(str),
    st.builds(
        lambda m, e: f"{m}e{e}",
        st.integers(min_value=-999, max_value=999),
        st.integers(min_value=-400, max_value=400),
    ),
    st.sampled_from(["0.01", "0", "-1", "nan", "inf", "-inf", "true", '"x"', "1979-05-27"]),
)


def _value(depth: int):
    if depth == 0:
        return _NUMBERS
    inner = _value(depth - 1)
    return st.one_of(
        _NUMBERS,
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from("abk"), inner), max_size=2).map(
            lambda kv: "{" + ", ".join(f"{k} = {v}" for k, v in dict(kv).items()) + "}"
        ),
    )


_KEYS = st.sampled_from(["tick_size", "lot_size", "price_band", "multiplier", "other"])
_SYMBOLS = st.text(alphabet=string.ascii_uppercase + "._ ", min_size=1, max_size=6)


@st.composite
def documents(draw) -> str:
    parts = []
    for symbol in draw(st.lists(_SYMBOLS, min_size=0, max_size=4)):
        parts.append(f'[instruments."{symbol}"]')
        for key in draw(st.lists(_KEYS, unique=True, max_size=5)):
            parts.append(f"{key} = {draw(_value(3))}")
    return "\n".join(parts) + "\n"


@st.composite
def mutations(draw) -> str:
    text = DEFAULT_INSTRUMENTS_TOML
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 8))
        insert = draw(st.text(alphabet="[]{}=.,\"'#\n 019eE+-_xinf", max_size=12))
        text = text[:pos] + insert + text[pos + cut :]
    return text


@st.composite
def near_valid(draw) -> str:
    """Every key present and well-typed, the numbers from anywhere: reaches the conversions."""
    n = _NUMBERS
    return table(
        f"tick_size = {draw(n)}\nlot_size = {draw(n)}\nmultiplier = {draw(n)}\n"
        f"price_band = [{draw(n)}, {draw(n)}]"
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(documents(), mutations(), near_valid()))
def test_any_toml_loads_or_raises_instrument_error(text):
    try:
        table = InstrumentTable.from_toml(text)
    except InstrumentError as err:
        assert "\n" not in str(err)
        return
    for instrument in table:  # what loads is usable: conversions stay exact
        assert instrument.ticks_to_price(instrument.band_high_ticks) == instrument.band_high
