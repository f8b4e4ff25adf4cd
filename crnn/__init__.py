"""crnn: CRNN, CNN+CTC and fixed-length CNN captcha readers: train, evaluate, predict, export."""

__version__ = "0.1.0"
