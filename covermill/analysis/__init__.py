"""Analysis: measurements on audio, used as post-render QA and by automation.

- :mod:`.rhythm`     tempo and beats
- :mod:`.loudness`   integrated loudness (BS.1770) and true peak
- :mod:`.similarity` key-invariant, tempo-invariant cover similarity
- :mod:`.genre_features` the Kaggle GTZAN table's 58 librosa features of a recording
- :mod:`.genre`      genre classifiers on those features: nested-CV evaluation, skops persistence
- :mod:`.cover`      cover detection: Qmax on a cross-recurrence plot (the verdict), 2DFTM vectors
- :mod:`.leadsheet`  the lead sheet: meter, key, chords, melody, bass, sections
  (:mod:`.chords`, :mod:`.meter`, :mod:`.melody`, :mod:`.sections`; docs/leadsheet.md)
- :mod:`.cliques`    SecondHandSongs clique lists, kNN clique model (accuracy, MAP)
"""
