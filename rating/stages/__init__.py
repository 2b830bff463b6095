"""The ten stages of period close, one module each, composed in rating.pipeline."""
