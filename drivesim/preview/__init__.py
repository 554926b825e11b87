"""`drivesim preview`: a scene editor with a fast key-frame preview, the full cascade on request and
"Add to catalog" (Gradio page in app.py; everything else here runs without Gradio)."""
