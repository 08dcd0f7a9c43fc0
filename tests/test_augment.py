import torch

from resnet_repro.data import crop_and_flip, random_crop_flip


def numbered_image() -> torch.Tensor:
    """One 2-channel 32x32 image whose every pixel holds a distinct positive number."""
    return torch.arange(1, 2 * 32 * 32 + 1, dtype=torch.float32).reshape(1, 2, 32, 32)


def test_crop_is_the_padded_image_shifted_pixel_for_pixel():
    image = numbered_image()
    out = crop_and_flip(image, torch.tensor([1]), torch.tensor([6]), torch.tensor([False]), 4)
    # padded row r, column c is image row r-4, column c-4 (zero outside)
    for row in range(32):
        for column in range(32):
            source_row, source_column = row + 1 - 4, column + 6 - 4
            inside = 0 <= source_row < 32 and 0 <= source_column < 32
            expected = image[0, :, source_row, source_column] if inside else torch.zeros(2)
            assert torch.equal(out[0, :, row, column], expected)


def test_flip_mirrors_the_crop_left_to_right():
    image = numbered_image()
    top, left = torch.tensor([4]), torch.tensor([4])
    plain = crop_and_flip(image, top, left, torch.tensor([False]), 4)
    flipped = crop_and_flip(image, top, left, torch.tensor([True]), 4)
    assert torch.equal(plain, image)  # offset 4 of 4 padding is the original view
    assert torch.equal(flipped, image.flip(3))


def test_corner_crop_holds_four_zero_rows_and_columns():
    out = crop_and_flip(numbered_image(), torch.tensor([0]), torch.tensor([0]),
                        torch.tensor([False]), 4)
    assert torch.count_nonzero(out[..., :4, :]) == 0 and torch.count_nonzero(out[..., :, :4]) == 0
    assert torch.equal(out[..., 4:, 4:], numbered_image()[..., :28, :28])


def test_random_augmentation_really_crops_and_flips():
    torch.manual_seed(0)
    batch = numbered_image().repeat(400, 1, 1, 1)
    out = random_crop_flip(batch)
    assert out.shape == batch.shape
    # the pixel at (row 16, column 16) reveals the offset and the flip of each crop
    centre = out[:, 0, 16, 16].long() - 1
    source_row, source_column = centre // 32, centre % 32
    shifts = {(int(r) - 16, int(c) - 16) for r, c in zip(source_row, source_column, strict=True)}
    assert len(shifts) > 30  # many of the 9x9 offsets occur
    assert max(abs(dr) for dr, _ in shifts) == 4
    flipped = sum(torch.equal(o[0, 16, 15:18].diff(), torch.tensor([-1.0, -1.0])) for o in out)
    assert 120 < flipped < 280  # about half the images are mirrored
