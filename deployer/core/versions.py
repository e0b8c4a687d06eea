"""The grammar of a version (an image tag, as docker defines it) and of a colour."""

from __future__ import annotations

import re

from deployer.core.names import COLOURS
from deployer.errors import InputError

TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def check_version(version: str) -> str:
    if not TAG.fullmatch(version or ""):
        raise InputError(
            f"invalid version {version!r}: a version is an image tag: 1 to 128 characters of A-Z, a-z, 0-9, "
            "'_', '.' and '-', not starting with '.' or '-'"
        )
    return version


def check_colour(colour: str) -> str:
    if colour not in COLOURS:
        raise InputError(f"unknown colour {colour!r}: use blue or green")
    return colour
