"""The install lines the detector plugins print when their optional packages are missing (kept in one place
so every command names the same fix)."""

from __future__ import annotations

#: What fixes a missing dlib (the default detector): the ``detect`` extra, or the two packages by name.
DLIB_INSTALL = "pip install 'facerep[detect]' (or: pip install dlib-bin face-recognition-models)"
#: What fixes a missing face-alignment (the second detector; it downloads its weights on first use).
FACE_ALIGNMENT_INSTALL = "pip install face-alignment"
