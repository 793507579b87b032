"""Automation: compose stems, instruments and analysis into a rendered cover.

- :mod:`.effects`  the pedalboard plugins a recipe may name, validated and built
- :mod:`.mixer`    gain, constant-power pan, effect chains, summing, master chain
- :mod:`.tempo`    Rubber Band time-stretch / pitch-shift (pedalboard)
- :mod:`.master`   loudness normalisation and true-peak limiting
- :mod:`.pipeline` ``render(song, recipe, out)``: the whole job, with atomic outputs

Imports are kept lazy here so that ``covermill.recipes`` can use :mod:`.effects` alone.
"""
