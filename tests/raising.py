"""`caught`: the exception a call raises, for the tests that look inside it (its message, attributes, notes).

The lessons' `test_raises` is a check and returns nothing (a notebook cell ending with it shows no `Out:`);
these tests need the exception object itself."""
import pytest


def caught(f, exc=Exception, contains=None):
    "Assert that `f()` raises `exc` (whose message contains `contains`, if given) and return the exception"
    with pytest.raises(exc) as info: f()
    if contains is not None:
        assert contains in str(info.value), f"{type(info.value).__name__} message lacks {contains!r}: {info.value}"
    return info.value
