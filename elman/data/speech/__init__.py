"""Speech data: reading audio and transcript manifests, a synthetic spoken corpus made
offline with eSpeak NG, and acoustic features (log-mel filterbanks, MFCC, SpecAugment).

The modules are imported by name (``elman.data.speech.audio``...): soundfile, soxr and the
eSpeak NG library are optional dependencies (``pip install elman[speech]``)."""
