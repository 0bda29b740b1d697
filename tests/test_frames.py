"""frames.py: build stacks of querysets, interned per capture."""

from __future__ import annotations

import sys

from ddt_prefetch_panel.frames import build_stack


def test_build_stack_interned_is_the_same_stack_and_tells_owners_apart():
    interned: dict = {}

    class Library:
        def build(self, anchor):
            return build_stack(sys._getframe(), anchor, interned)

    class First(Library):
        pass

    class Second(Library):
        pass

    def both(anchor):
        frame = sys._getframe()
        return build_stack(frame, anchor), build_stack(frame, anchor, interned)

    anchor = sys._getframe()
    calls = [both(anchor) for _ in range(2)]
    assert calls[0][0] == calls[0][1]
    assert calls[0][1] is calls[1][1]
    stacks = [First().build(anchor), Second().build(anchor)]
    assert stacks[0] is not stacks[1]
