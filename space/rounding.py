"""Channel arithmetic shared by the references (TF ``round_filters``, timm ``make_divisible``)."""


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale ``channels`` by ``width`` and round to a multiple of ``divisor``.

    Width 1.0 leaves the count unchanged (as TF and MindCV do); otherwise the result is
    ``max(divisor, int(c*w + divisor/2) // divisor * divisor)``, plus ``divisor`` when that
    falls below 90% of ``c*w``.
    """
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return rounded


def split_channels(total: int, groups: int) -> list[int]:
    """Split ``total`` channels into ``groups`` contiguous parts; the remainder goes to part 0."""
    parts = [total // groups] * groups
    parts[0] += total - sum(parts)
    return parts
