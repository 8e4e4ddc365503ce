"""cnnkit: image classification with the landmark convolutional networks."""

__version__ = "0.1.0"
