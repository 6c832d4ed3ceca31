"""Where we reach into a library's private names: one module per library, each name behind a small
function or class that says why it is needed and which versions were read. tests/test_compat.py
checks that every name is still there, with the shape we rely on, and names it when it is not.

The modules are called `<library>_private` so that none shadows the library itself.
"""
