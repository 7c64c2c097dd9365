"""``python -m hf_mimetic``: the same as the ``hf-mimetic`` command (:mod:`hf_mimetic.cli`)."""

from .cli import main

main()
