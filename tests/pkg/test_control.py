"""Control format, Depends and version order; versions checked against `dpkg --compare-versions`
(the real peer) on generated pairs."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.peers import peer
from tradekernel.kernel.pkg.control import (
    ControlError,
    Relation,
    compare_versions,
    format_paragraph,
    parse_depends,
    parse_paragraphs,
)

_part = st.text(alphabet="0123456789abz.+~", min_size=1, max_size=6)
versions = st.builds(
    lambda epoch, upstream, revision: f"{epoch}{upstream}{revision}",
    st.sampled_from(["", "1:", "2:"]),
    st.builds(lambda d, rest: d + rest, st.sampled_from("0123456789"), _part),
    st.sampled_from(["", "-1", "-2", "-1~b1", "-1+deb12u1", "-10"]),
)


def dpkg() -> str:
    return peer("dpkg")


@settings(max_examples=60, deadline=None)
@given(versions, versions)
def test_version_order_matches_dpkg(a: str, b: str) -> None:
    def holds(op: str) -> bool:
        return subprocess.run([dpkg(), "--compare-versions", a, op, b]).returncode == 0

    expected = -1 if holds("lt") else 1 if holds("gt") else 0
    assert compare_versions(a, b) == expected


def test_depends_with_alternatives_versions_and_qualifiers() -> None:
    groups = parse_depends("libc6 (>= 2.34), libgcc-s1 | libgcc1,\n python3:any (<< 3.12~)")
    assert groups == [
        [Relation("libc6", ">=", "2.34")],
        [Relation("libgcc-s1"), Relation("libgcc1")],
        [Relation("python3", "<<", "3.12~")],
    ]
    assert Relation("libc6", ">=", "2.34").satisfied_by("2.36-9+deb12u4")
    assert not Relation("libc6", ">=", "2.34").satisfied_by("2.31-13")
    with pytest.raises(ControlError, match="bad (dependency|version)"):
        parse_depends("libc6 (>= )")


def test_paragraphs_round_trip_with_continuation_lines() -> None:
    text = "Package: a\nDescription: short\n long line\n .\n more\n\nPackage: b\nVersion: 1\n"
    first, second = parse_paragraphs(text)
    assert first["Description"] == "short\nlong line\n.\nmore"
    assert second == {"Package": "b", "Version": "1"}
    assert parse_paragraphs(format_paragraph(first)) == [first]
    with pytest.raises(ControlError, match="line 1: continuation line"):
        parse_paragraphs(" stray\n")
