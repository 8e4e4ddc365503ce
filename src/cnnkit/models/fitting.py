"""Which size a model is built at for a data set: its paper's input where the data
reach it by padding or cropping, else the data's own image size."""

from cnnkit.models import Classifier, build_model

PAD_LIMIT = 4  # pixels per side: LeNet-5 pads MNIST's 28x28 to 32x32 (LeCun et al. 1998)


def fits_by_padding_or_cropping(
    input_size: tuple[int, int, int], image_shape: tuple[int, int, int]
) -> bool:
    """Whether images of ``image_shape`` (C, H, W) reach a model's input by padding at
    most ``PAD_LIMIT`` pixels a side (MNIST for LeNet-5) or by cropping 256x256 images
    (AlexNet's 224 of 256)."""
    _, height, width = image_shape
    _, model_height, model_width = input_size
    padded = (
        0 <= model_height - height <= 2 * PAD_LIMIT and 0 <= model_width - width <= 2 * PAD_LIMIT
    )
    cropped = height == width == 256 and model_height <= 256 and model_width <= 256
    return padded or cropped


def build_for_images(
    model_name: str, image_shape: tuple[int, int, int], num_classes: int
) -> Classifier:
    """``model_name`` at its paper's input size where images of ``image_shape`` fit it,
    else built for their own size (e.g. LeNet-1989, made for 16x16, on 28x28 MNIST)."""
    sizes = {"num_classes": num_classes, "in_channels": image_shape[0]}
    model = build_model(model_name, **sizes)
    if fits_by_padding_or_cropping(model.input_size, image_shape):
        return model
    return build_model(model_name, image_size=image_shape[1:], **sizes)
