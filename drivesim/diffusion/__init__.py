"""Noise schedule, samplers (diffusers schedulers as parts) and classifier-free guidance."""
