"""affect-rl: R1-style SFT + GRPO fine-tuning for emotion and empathy reasoning models."""

__version__ = "0.1.0"
