"""Password policy and e-mail normalisation (pure domain)."""

from __future__ import annotations

import pytest

from handwritten.auth.domain.errors import FieldViolation
from handwritten.auth.domain.passwords import (
    COMMON_PASSWORDS,
    character_classes,
    password_violations,
)
from handwritten.auth.domain.users import email_violations, name_violations, normalise_email

EMAIL = "ana.souza@example.com"


def messages(password: str, email: str = EMAIL) -> list[str]:
    violations = password_violations(password, email=email)
    assert all(v.field == "password" for v in violations)
    return [v.message for v in violations]


@pytest.mark.parametrize(
    "password",
    [
        "correct-horse-42",  # lower, symbol, digit
        "Tr0ub4dor&3x",  # all four classes
        "CORRECT HORSE 42",  # upper, symbol (space), digit
        "Ünïcödé-Pässwörd",  # non-ASCII letters count by case
        "x" * 60 + "Y1",
        "Aa1" + "b" * 125,  # exactly 128
    ],
)
def test_strong_passwords_pass(password: str) -> None:
    assert password_violations(password, email=EMAIL) == []


def test_too_short_and_too_long() -> None:
    assert messages("Ab1!ab1!a") == ["must be at least 10 characters long"]
    assert messages("Aa1" + "b" * 126) == ["must be at most 128 characters long"]


@pytest.mark.parametrize(
    ("password", "classes"),
    [("abcdefghijkl", 1), ("abcdefghij12", 2), ("ABCDEFGHIJ!!", 2), ("abcdEFGH1234", 3)],
)
def test_character_classes(password: str, classes: int) -> None:
    assert character_classes(password) == classes


def test_fewer_than_three_classes_is_rejected() -> None:
    assert messages("onlylowercaseletters") == [
        "must use at least 3 of: lower-case letters, upper-case letters, digits, symbols"
    ]
    assert messages("lowercase1234567") == [
        "must use at least 3 of: lower-case letters, upper-case letters, digits, symbols"
    ]


def test_password_must_not_contain_the_local_part_case_insensitively() -> None:
    assert messages("My-Ana.Souza-2024") == ["must not contain the part of the e-mail before the @"]
    # Very short local parts are not checked (they would forbid too much).
    assert password_violations("Tr0ub4dor&3x", email="tr@example.com") == []


def test_common_passwords_are_rejected_whatever_the_case() -> None:
    assert messages("Password123!") == ["is too common; choose a less predictable password"]
    assert messages("P@ssw0rd123") == ["is too common; choose a less predictable password"]
    assert all(p == p.lower() for p in COMMON_PASSWORDS)


def test_every_broken_rule_is_reported() -> None:
    assert messages("ana.souza", email=EMAIL) == [
        "must be at least 10 characters long",
        "must use at least 3 of: lower-case letters, upper-case letters, digits, symbols",
        "must not contain the part of the e-mail before the @",
    ]


def test_email_normalisation() -> None:
    assert normalise_email("  Ana.Souza@Example.COM ") == "ana.souza@example.com"


@pytest.mark.parametrize("email", ["ana@example.com", "a+tag@sub.example.org"])
def test_valid_emails(email: str) -> None:
    assert email_violations(email) == []


@pytest.mark.parametrize("email", ["ana", "@example.com", "ana@", "ana@localhost", "a na@x.com"])
def test_invalid_emails(email: str) -> None:
    assert email_violations(email) == [
        FieldViolation("email", "must be an e-mail address such as ana@example.com")
    ]


def test_too_long_email() -> None:
    email = "a" * 250 + "@x.io"
    assert email_violations(email) == [
        FieldViolation("email", "must be at most 254 characters long")
    ]


def test_blank_name() -> None:
    assert name_violations("   ") == [FieldViolation("name", "must not be blank")]
    assert name_violations("Ana") == []
