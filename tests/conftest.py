"""The suite's set-up: shared fixtures come from the tests.helpers modules named in
`pytest_plugins` (pytest takes it only from this top-level conftest), so test modules
name fixtures as arguments and import nothing for them. Asserts in every helper module
are rewritten by pytest as in the tests themselves."""

import pytest

pytest.register_assert_rewrite("tests.helpers")

pytest_plugins = [
    "tests.helpers.audio",  # clip_dir
    "tests.helpers.midi",  # jack
    "tests.helpers.models",  # tiny_bundle
    "tests.helpers.pulse",  # pulse
    "tests.helpers.xserver",  # xvfb, fresh_xvfb, trayer, qt_app
]
