"""Version and colour checks, colour choice and the route state."""

from __future__ import annotations

import pytest

from deployer.errors import InputError
from deployer.plan import Routes, check_colour, check_version, host, other, plan_release


def test_release_host():
    assert host("green", "0123abcd") == "green-0123abcd"
    assert host("green", "") == "green"  # containers from before release ids: the colour alias
    assert host("blue", "not-hex!") == "blue"


@pytest.mark.parametrize("version", ["v1", "1.2.3", "release_2026-11-26", "a" * 128, "V.9-rc_1"])
def test_good_versions(version):
    assert check_version(version) == version


@pytest.mark.parametrize("version", ["", "v 1", "v1;rm -rf /", "a" * 129, "v1/../x", "ünïcode", "$(id)", ".", ".."])
def test_bad_versions_are_input_errors(version):
    with pytest.raises(InputError) as caught:
        check_version(version)
    assert caught.value.exit_code == 2


def test_colours():
    assert other("blue") == "green"
    assert other("green") == "blue"
    assert check_colour("green") == "green"
    with pytest.raises(InputError, match="unknown colour 'red'"):
        check_colour("red")


def test_first_release_goes_to_blue():
    plan = plan_release("v1", Routes())
    assert (plan.live, plan.idle) == ("", "blue")


def test_release_goes_to_the_colour_that_is_not_live():
    assert plan_release("v2", Routes(live="blue", preview="")).idle == "green"
    assert plan_release("v3", Routes(live="green", preview="blue")).idle == "blue"


def test_routes_round_trip_and_ignore_garbage():
    routes = Routes(live="green", preview="blue")
    assert Routes.parse(routes.render()) == routes
    hosts = Routes(live="green", preview="blue", live_host="green-0123abcd", preview_host="blue")
    assert Routes.parse(hosts.render()) == hosts
    assert Routes.parse("live=green\nlive_host=green-$(id)\n") == Routes(live="green")
    assert Routes.parse("live=purple\npreview=blue\nnoise\n") == Routes(live="", preview="blue")
    assert Routes.parse("") == Routes()
