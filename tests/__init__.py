"""The test suite (a package, so that its modules import shared code from `tests.helpers`)."""
