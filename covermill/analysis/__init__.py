"""Analysis: measurements on audio, used as post-render QA and by automation.

- :mod:`.rhythm`     tempo and beats
- :mod:`.loudness`   integrated loudness (BS.1770) and true peak
- :mod:`.similarity` key-invariant, tempo-invariant cover similarity
- :mod:`.cover`      cover detection: Qmax on a cross-recurrence plot (the verdict), 2DFTM vectors
- :mod:`.cliques`    SecondHandSongs clique lists, kNN clique model (accuracy, MAP)
"""
