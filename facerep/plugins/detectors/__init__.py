"""Face detectors with 68 iBUG landmarks (component kind ``face_detector``)."""
