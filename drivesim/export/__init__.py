"""Writers for generated clips: H.264 mp4, label JSON (atomic)."""
