"""Models that transformers does not have: ConvMixer (:mod:`.convmixer`)."""
