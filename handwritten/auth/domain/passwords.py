"""The password strength policy applied at registration."""

from __future__ import annotations

from handwritten.auth.domain.errors import FieldViolation

MIN_LENGTH = 10
MAX_LENGTH = 128
MIN_CHARACTER_CLASSES = 3
#: A local part shorter than this is too generic to forbid inside passwords.
MIN_LOCAL_PART_TO_CHECK = 3

#: Commonly used passwords that satisfy the length and character-class rules
#: (compared case-insensitively). Deliberately small: a breached-password service
#: is the production-grade complement.
COMMON_PASSWORDS = frozenset(
    {
        "password123",
        "password123!",
        "password1234",
        "password1!",
        "password@123",
        "passw0rd123",
        "p@ssw0rd123",
        "p@ssword123",
        "p@55w0rd123",
        "qwerty12345",
        "qwerty123!",
        "qwerty123456",
        "qwertyuiop1",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abc1234567",
        "abcd123456",
        "welcome123",
        "welcome123!",
        "letmein123",
        "letmein123!",
        "changeme123",
        "changeme123!",
        "iloveyou123",
        "admin12345",
        "admin123456",
        "administrator1",
        "football123",
        "baseball123",
        "sunshine123",
        "princess123",
        "dragon12345",
        "monkey12345",
        "trustno1234",
        "master12345",
        "superman123",
        "starwars123",
        "summer2024!",
        "winter2024!",
        "spring2025!",
        "autumn2025!",
    }
)


def character_classes(password: str) -> int:
    """How many of lower-case, upper-case, digit and symbol (anything else) it uses."""
    lower = any(ch.islower() for ch in password)
    upper = any(ch.isupper() for ch in password)
    digit = any(ch.isdigit() for ch in password)
    symbol = any(not (ch.islower() or ch.isupper() or ch.isdigit()) for ch in password)
    return sum((lower, upper, digit, symbol))


def password_violations(password: str, *, email: str) -> list[FieldViolation]:
    """Every rule ``password`` breaks for the account ``email`` (empty when it is fine)."""
    messages: list[str] = []
    if len(password) < MIN_LENGTH:
        messages.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        messages.append(f"must be at most {MAX_LENGTH} characters long")
    if character_classes(password) < MIN_CHARACTER_CLASSES:
        messages.append(
            "must use at least 3 of: lower-case letters, upper-case letters, digits, symbols"
        )
    local_part = email.rpartition("@")[0].lower()
    folded = password.lower()
    if len(local_part) >= MIN_LOCAL_PART_TO_CHECK and local_part in folded:
        messages.append("must not contain the part of the e-mail before the @")
    if folded in COMMON_PASSWORDS:
        messages.append("is too common; choose a less predictable password")
    return [FieldViolation("password", message) for message in messages]
